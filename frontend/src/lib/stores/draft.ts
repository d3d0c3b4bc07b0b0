/** The script being edited, kept in localStorage so a reload or an expired session never loses it. */
import type { LimitsInput } from '$lib/gql/graphql';

export interface Draft {
	script: string;
	stdin: string;
	/** Feed `stdin` then EOF; otherwise stdin stays open for interactive input. */
	useStdin: boolean;
	runtime: string | null;
	limits: LimitsInput;
}

export const DRAFT_KEY = 'podrun:draft';

export const EXAMPLE = `import time

name = input("What is your name? ")
print(f"Hello, {name}!")
for i in range(5):
    print(f"\\033[32mtick\\033[0m {i}", flush=True)
    time.sleep(0.3)
`;

export function emptyDraft(): Draft {
	return { script: EXAMPLE, stdin: '', useStdin: false, runtime: null, limits: {} };
}

export function loadDraft(): Draft {
	try {
		const stored = localStorage.getItem(DRAFT_KEY);
		return stored ? { ...emptyDraft(), ...(JSON.parse(stored) as Partial<Draft>) } : emptyDraft();
	} catch {
		return emptyDraft();
	}
}

export function saveDraft(draft: Draft): void {
	try {
		localStorage.setItem(DRAFT_KEY, JSON.stringify(draft));
	} catch {
		// Storage full or disabled: the draft still lives in the page.
	}
}
