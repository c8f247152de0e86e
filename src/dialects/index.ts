import { createApp } from "../app";

/** The seed APIs, each a thin translation onto the canonical job. */
export const dialects = createApp();
