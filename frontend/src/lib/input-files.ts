/** Files the reader picks to send with a run: read in the browser, sent base64-encoded (SubmitExecutionInput.files). */

export interface InputFile {
	name: string;
	/** The bytes, base64-encoded. */
	content: string;
	size: number;
}

/** The names the API accepts: a plain name, no path (it refuses others with BAD_USER_INPUT). */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export function checkName(name: string): string | null {
	if (!NAME.test(name) || name === 'main.py' || name === 'outputs') {
		return `${name}: a file name must be letters, digits, '.', '_' or '-' (and not main.py)`;
	}
	return null;
}

function base64(bytes: Uint8Array): string {
	let binary = '';
	for (let offset = 0; offset < bytes.length; offset += 0x8000) {
		binary += String.fromCharCode(...bytes.subarray(offset, offset + 0x8000));
	}
	return btoa(binary);
}

/** Read picked files; throws with a message for a name the API would refuse. */
export async function readInputFiles(list: FileList | null): Promise<InputFile[]> {
	const files = [...(list ?? [])];
	for (const file of files) {
		const problem = checkName(file.name);
		if (problem) throw new Error(problem);
	}
	return Promise.all(
		files.map(async (file) => ({
			name: file.name,
			content: base64(new Uint8Array(await file.arrayBuffer())),
			size: file.size
		}))
	);
}
