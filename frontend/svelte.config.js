import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

/** @type {import('@sveltejs/kit').Config} */
export default {
	preprocess: vitePreprocess(),
	kit: {
		// A single-page app: the API serves index.html for every path that is not a file.
		adapter: adapter({ pages: 'build', assets: 'build', fallback: 'index.html', strict: true })
	},
	compilerOptions: { runes: true }
};
