import { configDefaults, defineConfig } from "vitest/config";

// Tests live beside the code they test (*.test.ts). The engine's differential tests run 64 KiB
// inputs through three implementations on both builds; they finish in seconds, so a test that needs
// more than the timeout below is hung, not slow.
export default defineConfig({
  test: {
    include: ["**/*.test.ts"],
    exclude: [...configDefaults.exclude, "**/node_modules/**", "**/dist/**"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
