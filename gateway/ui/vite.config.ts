/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The build lands inside the gateway's package, where app.py serves it (git-ignored; `make` rebuilds it).
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "../crucible_gateway/static/ui",
    emptyOutDir: true,
    sourcemap: false,
  },
  server: {
    // `npm run dev` beside a running stack: the API and its WebSockets stay on the gateway.
    proxy: {
      "/api": { target: "http://127.0.0.1:8080", ws: true },
      "/healthz": "http://127.0.0.1:8080",
    },
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["src/test/setup.ts"],
    include: ["src/**/*.test.tsx", "src/**/*.test.ts"],
    css: false,
  },
});
