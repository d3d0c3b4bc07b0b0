/**
 * The five limits as the web client shows and sends them. A Record over the generated LimitsInput's
 * fields, so a limit the schema adds must be described here before it compiles.
 */
import type { LimitsFieldsFragment, LimitsInput } from '$lib/gql/graphql';

export type LimitKey = keyof LimitsInput & keyof LimitsFieldsFragment;

export interface LimitField {
	key: LimitKey;
	label: string;
	unit: string;
	/** The API's unit per unit shown (1000 for seconds shown, milliseconds sent). */
	scale: number;
	step: number;
}

const FIELDS: Record<LimitKey, Omit<LimitField, 'key'>> = {
	wallTimeMs: { label: 'Wall time', unit: 's', scale: 1000, step: 0.5 },
	cpuTimeMs: { label: 'CPU time', unit: 's', scale: 1000, step: 0.5 },
	memoryMiB: { label: 'Memory', unit: 'MiB', scale: 1, step: 16 },
	outputBytes: { label: 'Output', unit: 'KiB', scale: 1024, step: 64 },
	processes: { label: 'Processes', unit: '', scale: 1, step: 1 }
};

export const LIMIT_FIELDS: LimitField[] = (Object.keys(FIELDS) as LimitKey[]).map((key) => ({ key, ...FIELDS[key] }));

/** The limits a run had, as input for another run. */
export function limitsInput(limits: Pick<LimitsFieldsFragment, LimitKey>): LimitsInput {
	return Object.fromEntries(LIMIT_FIELDS.map(({ key }) => [key, limits[key]]));
}
