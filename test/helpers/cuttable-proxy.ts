// A TCP proxy to a PostgreSQL server that can be cut: every connection
// through it closed, new ones refused until restored. For a network blip on
// one path only (a worker's LISTEN session, say), with the rest direct. Or
// frozen: nothing forwarded any more and nothing closed, as a partition or a
// proxy that silently dropped the flow leaves a connection.
import { connect, createServer, type Server, type Socket } from 'node:net';

export class CuttableProxy {
  private readonly sockets = new Set<Socket>();
  private readonly pairs: [Socket, Socket][] = [];
  private server: Server | null = null;
  private down = false;
  private clientDelayMs = 0;
  private port = 0;

  constructor(private readonly target: URL) {}

  async start(): Promise<void> {
    const server = createServer((inbound) => {
      if (this.down) {
        inbound.destroy();
        return;
      }
      const outbound = connect(Number(this.target.port || 5432), this.target.hostname);
      this.sockets.add(inbound);
      this.sockets.add(outbound);
      const close = () => {
        inbound.destroy();
        outbound.destroy();
      };
      inbound.on('error', close).on('close', () => {
        const later = this.deliverAfterClose ? this.endAfterDelivery.get(inbound) : undefined;
        if (later) later();
        else close();
      });
      outbound.on('error', close).on('close', close);
      if (this.clientDelayMs > 0) this.delayed(inbound, outbound);
      else inbound.pipe(outbound);
      outbound.pipe(inbound);
      this.pairs.push([inbound, outbound]);
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.port = (server.address() as { port: number }).port;
  }

  /** The target's URL with the proxy's address. */
  url(): string {
    const u = new URL(this.target.toString());
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  cut(): void {
    this.down = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.pairs.length = 0;
  }

  /** Open connections stop forwarding, both ways, and stay open. */
  freeze(): void {
    for (const [a, b] of this.pairs) {
      a.unpipe(b);
      b.unpipe(a);
      a.pause();
      b.pause();
    }
  }

  /**
   * Open connections still carry what the client sends, but the server's
   * answers go nowhere: a statement commits and its client never hears of it.
   */
  muteReplies(): void {
    for (const [a, b] of this.pairs) {
      b.unpipe(a);
      b.pause();
    }
  }

  /**
   * What clients send reaches the server ms later, on open connections and
   * new ones: a slow network or server. 0 makes it prompt again (after what
   * is already on its way). With deliverAfterClose, what a client sent
   * before it closed still reaches the server, as TCP delivers it, and the
   * server's side closes after; without, it is dropped with the connection.
   */
  slowClients(ms: number, o: { deliverAfterClose?: boolean } = {}): void {
    this.clientDelayMs = ms;
    this.deliverAfterClose = o.deliverAfterClose ?? false;
    for (const [a, b] of this.pairs) {
      if (this.slowed.has(a)) continue;
      a.unpipe(b);
      this.delayed(a, b);
    }
  }

  private readonly slowed = new WeakSet<Socket>();
  private deliverAfterClose = false;
  /** Per slowed client connection: closes the server's side once what the client sent is delivered. */
  private readonly endAfterDelivery = new WeakMap<Socket, () => void>();

  private delayed(from: Socket, to: Socket): void {
    this.slowed.add(from);
    // One queue a connection, written in order: a chunk never overtakes an earlier one when the delay changes.
    const queue: { at: number; chunk: Buffer }[] = [];
    let timer: NodeJS.Timeout | null = null;
    let ending = false;
    const flush = () => {
      timer = null;
      while (queue.length > 0 && queue[0]!.at <= performance.now()) {
        const { chunk } = queue.shift()!;
        if (!to.destroyed) to.write(chunk);
      }
      if (queue.length > 0) timer = setTimeout(flush, queue[0]!.at - performance.now());
      else if (ending) to.end();
    };
    this.endAfterDelivery.set(from, () => {
      ending = true;
      if (!timer) flush();
    });
    from.on('data', (chunk: Buffer) => {
      queue.push({ at: performance.now() + this.clientDelayMs, chunk });
      if (this.clientDelayMs === 0 || !timer) {
        if (timer) clearTimeout(timer);
        timer = setTimeout(flush, Math.max(0, queue[0]!.at - performance.now()));
      }
    });
    from.resume();
  }

  restore(): void {
    this.down = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
