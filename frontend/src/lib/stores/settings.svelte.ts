/** Preferences remembered in this browser: theme and editor settings. */

export type Theme = 'system' | 'light' | 'dark';

export interface Preferences {
	theme: Theme;
	fontSize: number;
	tabSize: 2 | 4 | 8;
	lineWrapping: boolean;
}

export const SETTINGS_KEY = 'podrun:settings';
export const DEFAULTS: Preferences = { theme: 'system', fontSize: 14, tabSize: 4, lineWrapping: false };

function load(): Preferences {
	try {
		const stored = JSON.parse(localStorage.getItem(SETTINGS_KEY) ?? '{}') as Partial<Preferences>;
		return { ...DEFAULTS, ...stored };
	} catch {
		return { ...DEFAULTS };
	}
}

class Settings {
	prefs = $state<Preferences>(typeof localStorage === 'undefined' ? { ...DEFAULTS } : load());
	#systemDark = $state(false);

	/** Whether the page is dark right now (the theme, or the system's when theme is "system"). */
	dark = $derived(this.prefs.theme === 'dark' || (this.prefs.theme === 'system' && this.#systemDark));

	/** Follow the system theme and keep <html class="dark"> in step; call once from the layout. */
	watch(): () => void {
		const media = matchMedia('(prefers-color-scheme: dark)');
		this.#systemDark = media.matches;
		const onChange = (event: MediaQueryListEvent) => (this.#systemDark = event.matches);
		media.addEventListener('change', onChange);
		const stop = $effect.root(() => {
			$effect(() => {
				document.documentElement.classList.toggle('dark', this.dark);
			});
			$effect(() => {
				localStorage.setItem(SETTINGS_KEY, JSON.stringify(this.prefs));
			});
		});
		return () => {
			media.removeEventListener('change', onChange);
			stop();
		};
	}
}

export const settings = new Settings();
