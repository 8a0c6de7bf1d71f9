// The dashboard is served by `tourwise serve` under /admin from the files built here.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/admin/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // One small bundle; no source maps in the binary.
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
});
