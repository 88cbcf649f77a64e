/**
 * A miniflare external plugin (loaded by miniflare from this file, through a worker's
 * `unsafeBindings`) whose one job is to give a worker a real workerd `r2Bucket` binding whose
 * requests go to a service we name — the R2 gateway (r2-gateway.ts) — with the bucket in the
 * binding's props. miniflare's own r2Buckets option always binds its on-disk bucket object, and
 * workerd's R2 API exists only for an `r2Bucket` binding, so this is the seam that keeps
 * workerd's R2 API while the store serves it.
 *
 * Promises: it adds bindings only, never a service; the props are fixed here, out of the
 * worker's reach. Must stay plain erasable TypeScript: miniflare imports it directly.
 */

export const R2_PLUGIN_NAME = "mailroute-r2";

export interface R2BindingOptions {
  bucket: string;
  /** The workerd service the binding's requests go to. */
  service: string;
}

interface UnsafeBinding {
  name: string;
  options: R2BindingOptions;
}

export const plugins = {
  [R2_PLUGIN_NAME]: {
    options: undefined,
    getBindings(bindings: UnsafeBinding[] | undefined) {
      return (bindings ?? []).map((binding) => ({
        name: binding.name,
        r2Bucket: { name: binding.options.service, props: { json: JSON.stringify({ bucket: binding.options.bucket }) } },
      }));
    },
    getNodeBindings() {
      return {};
    },
    getServices() {
      return [];
    },
  },
};
