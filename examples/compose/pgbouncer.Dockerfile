# Debian's PgBouncer (the version test/pgbouncer.test.ts runs against).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends pgbouncer \
 && rm -rf /var/lib/apt/lists/*
COPY examples/compose/pgbouncer.ini examples/compose/userlist.txt /etc/pgbouncer/
USER postgres
CMD ["/usr/sbin/pgbouncer", "/etc/pgbouncer/pgbouncer.ini"]
