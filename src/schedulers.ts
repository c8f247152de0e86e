import { rpc, type SchedulerRpc } from "./contracts/rpc";
import type { Env } from "./env";

/** The scheduler object of the backend named `name`. */
export const schedulerStub = (env: Env, name: string): SchedulerRpc => rpc<SchedulerRpc>(env.BACKEND_SCHEDULERS, name);
