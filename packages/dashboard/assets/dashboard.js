// sluice dashboard: the only script of the pages (the Content-Security-Policy
// allows no inline script). It refreshes the overview's live part, asks
// before destructive actions and selects all rows of the dead-letter list.
// Every page works without it, except the live refresh.
(function () {
  'use strict';

  function liveRefresh() {
    var live = document.getElementById('live');
    if (!live || !live.dataset.liveUrl) return;
    var status = document.getElementById('live-status');
    var period = Number(document.body.dataset.refreshMs) || 5000;
    var busy = false;
    var stopped = false;
    function say(text, bad) {
      if (!status) return;
      status.textContent = text;
      status.classList.toggle('bad', Boolean(bad));
    }
    function tick() {
      if (busy || stopped || document.hidden) return;
      busy = true;
      fetch(live.dataset.liveUrl, { credentials: 'same-origin', cache: 'no-store', headers: { 'x-sluice-live': '1' } })
        .then(function (res) {
          if (res.status === 401 || res.status === 403) {
            stopped = true;
            say('signed out: reload to sign in', true);
            return null;
          }
          if (!res.ok) throw new Error('HTTP ' + res.status);
          return res.text();
        })
        .then(function (text) {
          if (text === null) return;
          live.innerHTML = text;
          live.dataset.refreshedAt = String(Date.now());
          say('live · updated ' + new Date().toLocaleTimeString());
        })
        .catch(function () {
          say('cannot reach the dashboard: retrying', true);
        })
        .finally(function () {
          busy = false;
        });
    }
    setInterval(tick, period);
    document.addEventListener('visibilitychange', tick);
  }

  function confirmations() {
    document.addEventListener('submit', function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement)) return;
      var submitter = event.submitter;
      var message = form.dataset.confirm;
      if (!message && form.dataset.confirmPurge && submitter && /^purge/.test(submitter.value || '')) {
        message = form.dataset.confirmPurge;
      }
      if (message && !window.confirm(message)) event.preventDefault();
    });
  }

  function selectAll() {
    var all = document.getElementById('select-all');
    if (!all) return;
    all.addEventListener('change', function () {
      var boxes = document.querySelectorAll('input[type=checkbox][name=ids]');
      for (var i = 0; i < boxes.length; i++) boxes[i].checked = all.checked;
    });
  }

  function autoSubmitFilters() {
    var selects = document.querySelectorAll('form.filters select');
    for (var i = 0; i < selects.length; i++) {
      selects[i].addEventListener('change', function (event) {
        event.target.form.submit();
      });
    }
  }

  document.addEventListener('DOMContentLoaded', function () {
    liveRefresh();
    confirmations();
    selectAll();
    autoSubmitFilters();
  });
})();
