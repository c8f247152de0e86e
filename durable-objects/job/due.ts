/**
 * Work due this soon counts as due now. An alarm can fire a hair before its time (and the clock a
 * Worker reads is coarse); skipping such work would re-set the alarm to the very time being run,
 * which the runtime then drops when the handler returns.
 */
const DUE_SLACK_MS = 250;
export const dueBy = (t: number | null): boolean => t !== null && t <= Date.now() + DUE_SLACK_MS;
