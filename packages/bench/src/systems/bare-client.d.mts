// Types of bare-client.mjs for the TypeScript side of the bench.
export declare const CONNECTIONS: number;
export declare const CLAIM_BATCH: number;
export declare const IDLE_SLEEP_MS: number;
export declare const SCHEMA: string;
export declare const CLAIM: string;
export declare const FINISH_KEEP: string;
export declare const FINISH_DROP: string;
export declare const SEED_SERIES: string;

export interface BareClientOptions {
  /** Finish each batch with DELETE → INSERT into bare.history (true) or a plain DELETE. */
  keepHistory: boolean;
  /** Called with each claimed job's payload before its batch is finished. */
  onJob: (payload: { i: number; t?: number }) => void;
}

export declare function startBareClient(url: string, options: BareClientOptions): Promise<{ stop(): Promise<void> }>;
