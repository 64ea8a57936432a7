// Attaches bundles the way actions/attest calls @sigstore/oci (attest.ts), one after another
// in one process: node attach.mjs IMAGE_NAME IMAGE_DIGEST BUNDLE...
import { readFileSync } from 'node:fs';
import { attachArtifactToImage } from '@sigstore/oci';

const [imageName, imageDigest, ...bundles] = process.argv.slice(2);
const started = performance.now();
for (const path of bundles) {
  const artifact = readFileSync(path);
  const bundle = JSON.parse(artifact.toString());
  const payload = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString());
  await attachArtifactToImage({
    credentials: null, // an anonymous local registry (actions/attest always signs in)
    imageName,
    imageDigest,
    artifact,
    mediaType: bundle.mediaType,
    annotations: {
      'dev.sigstore.bundle.content': 'dsse-envelope',
      'dev.sigstore.bundle.predicateType': payload.predicateType,
    },
    fetchOpts: { timeout: 30000, retry: 3 },
  });
}
console.log(JSON.stringify({ attaches: bundles.length, seconds: (performance.now() - started) / 1000 }));
