// A single-page app: everything renders in the browser, talking to the API at the same origin.
export const ssr = false;
export const prerender = false;
