
type AnyNamespace = DurableObjectNamespace<Rpc.DurableObjectBranded | undefined>;

/** The Worker's bindings: Durable Objects and R2 from wrangler.toml, the rest from vars and secrets. */
export interface Env {
  /** Stubs are typed by their RPC surfaces in src/contracts/rpc.ts (see `rpc`), not by the classes. */
  JOBS: AnyNamespace;
  BACKEND_SCHEDULERS: AnyNamespace;
  TENANT_STATE: AnyNamespace;
  /** Objects that follow jobs for their clients (a job's `subscriber`): the ComfyUI sockets. */
  JOB_SUBSCRIBERS: AnyNamespace;
  IMAGES: R2Bucket;
  TENANTS?: string;
  BACKENDS?: string;
  S3_ENDPOINT?: string;
  S3_REGION?: string;
  S3_ACCESS_KEY_ID?: string;
  S3_SECRET_ACCESS_KEY?: string;
  PUBLIC_BASE_URL?: string;
  WEBHOOK_RETRY_SCHEDULE?: string;
  ALLOW_PRIVATE_URLS?: string;
  /** Signs output links and callback tokens; required when deployed. */
  URL_SIGNING_SECRET?: string;
  /** JSON: what RunPod endpoint ids and Cerebrium app names in dialect paths stand for. */
  ENDPOINTS?: string;
  /** When set, SD-on-EKS outputs go to this bucket of the S3 store, in SD-on-EKS's own layout. */
  S3_OUTPUT_BUCKET?: string;
  /** Seconds an ended job is kept (default 30 days, at least 60); then it and its files are deleted. */
  RETENTION_S?: string;
  /** Name shown in `r2://<bucket>/...` locations. */
  R2_BUCKET_NAME?: string;
}

type EaselEnv = Env;
declare global {
  namespace Cloudflare {
    interface Env extends EaselEnv {}
  }
}
