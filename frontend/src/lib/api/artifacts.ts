/**
 * Artifacts are downloaded with the session's access token (the API serves them to their owner only,
 * always as attachments), then shown or saved from a blob URL: nothing a script produced is ever
 * loaded from the API's origin as a page.
 */
import type { ArtifactFieldsFragment } from '$lib/gql/graphql';
import { ApiError, toApiError } from './errors';
import { session } from './session.svelte';

const objectUrls = new Map<string, Promise<string>>();

async function fetchArtifact(artifact: ArtifactFieldsFragment): Promise<Blob> {
	const token = await session.accessToken();
	let response: Response;
	try {
		response = await fetch(artifact.url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
	} catch {
		throw new ApiError('NETWORK', 'network unreachable');
	}
	if (!response.ok) {
		// The API answers a refused download as {"message", "code"}, as GraphQL reports errors.
		throw toApiError(await response.json().catch(() => ({ message: `HTTP ${response.status}` })));
	}
	return response.blob();
}

/** A blob URL of the artifact's bytes, fetched once per page. */
export function artifactObjectUrl(artifact: ArtifactFieldsFragment): Promise<string> {
	let url = objectUrls.get(artifact.id);
	if (!url) {
		url = fetchArtifact(artifact).then((blob) => URL.createObjectURL(blob));
		url.catch(() => objectUrls.delete(artifact.id));
		objectUrls.set(artifact.id, url);
	}
	return url;
}

/** Save the artifact under its own name. */
export async function downloadArtifact(artifact: ArtifactFieldsFragment): Promise<void> {
	const link = document.createElement('a');
	link.href = await artifactObjectUrl(artifact);
	link.download = artifact.name;
	link.click();
}
