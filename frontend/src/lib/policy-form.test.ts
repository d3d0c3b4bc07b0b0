import { describe, expect, it } from 'vitest';
import { fieldKey, policyError, sentLimit, shownLimit } from './policy-form';

describe('the system settings form', () => {
	it('shows limits in seconds, MiB and KiB and sends them back exact', () => {
		expect(shownLimit('wallTimeMs', 30_000)).toBe(30);
		expect(shownLimit('cpuTimeMs', 1500)).toBe(1.5);
		expect(shownLimit('outputBytes', 1_048_576)).toBe(1024);
		expect(shownLimit('memoryMiB', 256)).toBe(256);
		expect(sentLimit('wallTimeMs', 2.5)).toBe(2500);
		expect(sentLimit('outputBytes', 64)).toBe(65_536);
		expect(sentLimit('processes', 16)).toBe(16);
	});

	it('puts an error beside the limit it names, in the unit the field shows', () => {
		expect(policyError('roles.USER.maxLimits.wallTimeMs must be between 1 and 60000')).toEqual({
			field: fieldKey('roles.USER.maxLimits.wallTimeMs'),
			text: 'Must be between 0.001 s and 60 s.'
		});
		expect(policyError('roles.ADMIN.defaultLimits.outputBytes must be at least 1').text).toBe('Must be at least 0.001 KiB.');
	});

	it('files a default above its maximum under that default', () => {
		expect(policyError('roles.CONTRIBUTOR: default memoryMiB must not exceed the maximum')).toEqual({
			field: fieldKey('roles.CONTRIBUTOR.defaultLimits.memoryMiB'),
			text: 'Must not exceed the maximum.'
		});
	});

	it('finds role and system fields whatever case the server spells them in', () => {
		expect(policyError('roles.USER.storageMib: Input should be less than or equal to 16777216')).toEqual({
			field: fieldKey('roles.USER.storageMiB'),
			text: 'Input should be less than or equal to 16777216.'
		});
		expect(policyError('queuedExecutionsCap: Input should be greater than or equal to 1').field).toBe('queuedexecutionscap');
		expect(policyError('something else went wrong')).toEqual({ field: '', text: 'Something else went wrong.' });
	});
});
