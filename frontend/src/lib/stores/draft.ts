/**
 * The script being edited, kept in localStorage so a reload or an expired session never loses it.
 * Each account has its own draft: whoever signs in next in this browser never sees another's code.
 */
import type { LimitsInput } from '$lib/gql/graphql';
import type { InputFile } from '$lib/input-files';

export interface Draft {
	script: string;
	stdin: string;
	/** Feed `stdin` then EOF; otherwise stdin stays open for interactive input. */
	useStdin: boolean;
	runtime: string | null;
	limits: LimitsInput;
	/** Files sent with each run (at most the API's 512 KiB in all, so they fit in localStorage). */
	files: InputFile[];
	/** The run the editor last started: coming back to the editor shows it. */
	run: string | null;
	/** The saved script being edited, and its text as last saved (to tell unsaved changes). */
	opened: OpenedScript | null;
}

export interface OpenedScript {
	id: string;
	name: string;
	saved: string;
}

/** Whether the editor holds work that opening something else would lose. */
export function unsaved(draft: Draft): boolean {
	if (draft.opened) return draft.script !== draft.opened.saved;
	return draft.script.trim() !== '' && draft.script !== EXAMPLE;
}

/** Where the draft of the account with this id is kept. */
export function draftKey(userId: string): string {
	return `podrun:draft:${userId}`;
}

// Before drafts were per account there was one for the whole browser; whose it was is unknown.
const SHARED_KEY = 'podrun:draft';

export const EXAMPLE = `import time

name = input("What is your name? ")
print(f"Hello, {name}!")
for i in range(5):
    print(f"\\033[32mtick\\033[0m {i}", flush=True)
    time.sleep(0.3)
`;

export function emptyDraft(): Draft {
	return { script: EXAMPLE, stdin: '', useStdin: false, runtime: null, limits: {}, files: [], run: null, opened: null };
}

export function loadDraft(userId: string): Draft {
	try {
		localStorage.removeItem(SHARED_KEY);
		const stored = localStorage.getItem(draftKey(userId));
		return stored ? { ...emptyDraft(), ...(JSON.parse(stored) as Partial<Draft>) } : emptyDraft();
	} catch {
		return emptyDraft();
	}
}

export function saveDraft(userId: string, draft: Draft): void {
	try {
		localStorage.setItem(draftKey(userId), JSON.stringify(draft));
	} catch {
		// Storage full or disabled: the draft still lives in the page.
	}
}
