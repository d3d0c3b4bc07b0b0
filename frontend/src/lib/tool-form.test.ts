import { describe, expect, test } from 'vitest';
import { fieldError, formErrors, initialState, runInput, type ToolField } from './tool-form';

function field(changes: Partial<ToolField>): ToolField {
	return {
		name: 'f',
		label: 'F',
		kind: 'TEXT',
		required: false,
		default: null,
		help: null,
		min: null,
		max: null,
		choices: null,
		accept: null,
		maxBytes: null,
		...changes
	};
}

const THRESHOLD = field({ name: 'threshold', kind: 'NUMBER', required: true, min: 0, max: 100 });
const COURSE = field({ name: 'course', kind: 'CHOICE', choices: ['maths', 'physics'], default: 'maths' });
const STRICT = field({ name: 'strict', kind: 'BOOLEAN' });
const MARKS = field({ name: 'marks', kind: 'FILE', required: true, accept: ['.csv'], maxBytes: 10 });
const FORM = [THRESHOLD, COURSE, STRICT, MARKS];

describe('a tool form in the browser', () => {
	test('opens at the defaults', () => {
		expect(initialState(FORM)).toEqual({ text: { threshold: '', course: 'maths' }, ticked: { strict: false }, files: { marks: null } });
	});

	test.each([
		['', 'is required'],
		['abc', 'must be a number'],
		['101', 'must be at most 100'],
		['-0.5', 'must be at least 0'],
		['42.5', null]
	])('a number %j: %s, as the server says it', (typed, error) => {
		const state = initialState(FORM);
		state.text.threshold = typed;
		expect(fieldError(THRESHOLD, state)).toBe(error);
	});

	test('a choice not offered, a file too large or of another type, a line break in a text', () => {
		const state = initialState(FORM);
		state.text.course = 'art';
		expect(fieldError(COURSE, state)).toBe('must be one of maths, physics');
		state.files.marks = { name: 'marks.xlsx', content: '', size: 1 };
		expect(fieldError(MARKS, state)).toBe('must be a file of type .csv');
		state.files.marks = { name: 'marks.csv', content: '', size: 11 };
		expect(fieldError(MARKS, state)).toBe('the file must be at most 10 bytes');
		const text = field({ name: 'title' });
		state.text.title = 'two\nlines';
		expect(fieldError(text, state)).toBe('must be a single line');
	});

	test('becomes runTool values: numbers as numbers, booleans as booleans, files apart, empty boxes left out', () => {
		const state = initialState(FORM);
		state.text.threshold = ' 60 ';
		state.text.course = '';
		state.ticked.strict = true;
		state.files.marks = { name: 'marks.csv', content: 'YQ==', size: 1 };
		expect(formErrors(FORM, state)).toEqual({});
		expect(runInput(FORM, state)).toEqual({
			values: { threshold: 60, strict: true },
			files: [{ field: 'marks', name: 'marks.csv', content: 'YQ==' }]
		});
	});
});
