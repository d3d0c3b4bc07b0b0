/**
 * Preferences: theme and editor settings. Kept with the account (mySettings / updateMySettings), so
 * every browser the user signs in from shows the same; this browser's copy in localStorage only
 * paints the right theme before the account has answered.
 */
import { request } from '$lib/api/graphql';
import { describeError } from '$lib/api/errors';
import { session } from '$lib/api/session.svelte';
import { MySettingsDocument, UpdateMySettingsDocument, type SettingsFieldsFragment, type Theme as ServerTheme } from '$lib/gql/graphql';

export type Theme = 'system' | 'light' | 'dark';

export interface Preferences {
	theme: Theme;
	fontSize: number;
	tabSize: 2 | 4 | 8;
	lineWrapping: boolean;
}

export const SETTINGS_KEY = 'podrun:settings';
/** Set to the user's id while a change made here is not yet saved to their account (a reload keeps it). */
export const UNSAVED_KEY = 'podrun:settings-unsaved';
export const DEFAULTS: Preferences = { theme: 'system', fontSize: 14, tabSize: 4, lineWrapping: false };
/** Changes made in a burst (dragging the font-size slider) are sent once they settle. */
const SAVE_DELAY_MS = 400;

function load(): Preferences {
	try {
		const stored = JSON.parse(localStorage.getItem(SETTINGS_KEY) ?? '{}') as Partial<Preferences>;
		return { ...DEFAULTS, ...stored };
	} catch {
		return { ...DEFAULTS };
	}
}

export function fromServer(saved: SettingsFieldsFragment): Preferences {
	return {
		theme: saved.theme.toLowerCase() as Theme,
		fontSize: saved.fontSize,
		tabSize: (saved.tabSize === 2 || saved.tabSize === 8 ? saved.tabSize : 4) as 2 | 4 | 8,
		lineWrapping: saved.lineWrapping
	};
}

export function toServer(prefs: Preferences): SettingsFieldsFragment {
	return { theme: prefs.theme.toUpperCase() as ServerTheme, fontSize: prefs.fontSize, tabSize: prefs.tabSize, lineWrapping: prefs.lineWrapping };
}

class Settings {
	prefs = $state<Preferences>(typeof localStorage === 'undefined' ? { ...DEFAULTS } : load());
	/** Whether the account's settings have been loaded (changes before that are not sent). */
	synced = $state(false);
	/** Why the last save to the account failed, if it did. */
	syncError = $state<string | null>(null);
	/** The settings as the account last confirmed them (JSON), for the page to show they are saved. */
	saved = $state('');
	#systemDark = $state(false);
	#timer: ReturnType<typeof setTimeout> | undefined;

	/** Whether the page is dark right now (the theme, or the system's when theme is "system"). */
	dark = $derived(this.prefs.theme === 'dark' || (this.prefs.theme === 'system' && this.#systemDark));

	/** Follow the system theme, keep <html class="dark"> in step and the account in sync; call once from the layout. */
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
				const prefs = $state.snapshot(this.prefs);
				localStorage.setItem(SETTINGS_KEY, JSON.stringify(prefs));
				if (this.synced && session.user) this.#save(prefs);
			});
			$effect(() => {
				if (session.user) void this.#pull();
				else this.synced = false;
			});
		});
		return () => {
			media.removeEventListener('change', onChange);
			clearTimeout(this.#timer);
			stop();
		};
	}

	async #pull(): Promise<void> {
		try {
			const saved = (await request(MySettingsDocument, {})).mySettings;
			this.saved = JSON.stringify(toServer(fromServer(saved)));
			// A change made here that never reached the account (reloaded mid-save) is sent now; else the account's win.
			if (localStorage.getItem(UNSAVED_KEY) !== session.user?.id) this.prefs = fromServer(saved);
			this.synced = true;
		} catch (error) {
			this.syncError = describeError(error);
		}
	}

	#save(prefs: Preferences): void {
		const input = toServer(prefs);
		if (JSON.stringify(input) === this.saved) return;
		clearTimeout(this.#timer);
		if (session.user) localStorage.setItem(UNSAVED_KEY, session.user.id);
		this.#timer = setTimeout(() => {
			request(UpdateMySettingsDocument, { input })
				.then((result) => {
					this.saved = JSON.stringify(toServer(fromServer(result.updateMySettings)));
					this.syncError = null;
					if (this.saved === JSON.stringify(toServer(this.prefs))) localStorage.removeItem(UNSAVED_KEY);
				})
				.catch((error: unknown) => (this.syncError = describeError(error)));
		}, SAVE_DELAY_MS);
	}
}

export const settings = new Settings();
