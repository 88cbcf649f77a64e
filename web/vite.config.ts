// Builds the dashboard into web/dist (git-ignored), served by src/api/dashboard-routes.ts.
// No inline scripts or styles are emitted, so the server's strict CSP holds.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, modulePreload: { polyfill: false }, assetsInlineLimit: 0, sourcemap: false },
  server: { proxy: { "/client/v4": "http://127.0.0.1:8787" } },
});
