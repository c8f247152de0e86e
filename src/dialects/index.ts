import { createApp } from "../app";
import { a1111 } from "./a1111";
import { cerebrium } from "./cerebrium";
import { eks } from "./eks";
import { modelslab } from "./modelslab";
import { runpod } from "./runpod";

/** The seed APIs, each a thin translation onto the canonical job, each with its own error shape. */
export const dialects = createApp();
dialects.route("/", a1111);
dialects.route("/", modelslab);
dialects.route("/", cerebrium);
dialects.route("/", runpod);
dialects.route("/", eks);
