import { registerManifestRenderer } from "../contracts/renderers";
import { eksManifest } from "./eks/translate";

/**
 * Registers the manifests written beside a job's outputs in S3 (see src/contracts/renderers.ts).
 * Only SD-on-EKS writes one (its `.out` file).
 */
export function registerManifestRenderers(): void {
  registerManifestRenderer("eks", (input, result) => JSON.stringify(eksManifest(input, result)));
}
