import { vitePreprocess } from "@sveltejs/vite-plugin-svelte";

export default {
  preprocess: vitePreprocess(),
  // Runes only: Svelte 4 syntax fails to compile instead of slipping in.
  compilerOptions: { runes: true },
};
