"""MkDocs hook: the links between docs/ and the repository's other Markdown files, checked by `mkdocs build --strict`.

A page links to a file outside docs/ as `../frontend/README.md`, which works where the Markdown is read in the
repository; the built site has no copy of it, so the file must exist (a warning otherwise, which fails `--strict`) and
the link becomes one into `repo_url` when that is configured, else the path as text. The other way round, the
README files that link into docs/ (`docs/prun.md#prun-exit-codes`) are checked too: the file, and the anchor.
"""

import logging
import re
import unicodedata
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.repository_links")

_OUTSIDE_LINK = re.compile(r"\[(?P<label>[^\]]+)\]\((?P<target>\.\./[^)#\s]+)(?P<fragment>#[^)\s]*)?\)")
_LINK = re.compile(r"\]\((?P<target>[^)#\s]*)(?:#(?P<fragment>[^)\s]*))?\)")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)
_ANCHOR = re.compile(r'<a id="([^"]+)"')
# Markdown files outside docs/ that link into it, or to each other.
_REPOSITORY_MARKDOWN = (
    "README.md",
    "backend/client/README.md",
    "frontend/README.md",
    "infra/README.md",
    "infra/k8s/README.md",
    "infra/kubernetes-local/README.md",
)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    docs_dir = Path(config["docs_dir"]).resolve()
    source = docs_dir / page.file.src_path

    def rewrite(match: re.Match[str]) -> str:
        target = (source.parent / match["target"]).resolve()
        if docs_dir in target.parents:
            return match[0]  # a page of the docs: MkDocs checks it
        if not target.exists():
            log.warning("%s links to %s, which is not in the repository", page.file.src_path, match["target"])
            return match[0]
        path = target.relative_to(docs_dir.parent).as_posix()
        if config.get("repo_url"):
            return f"[{match['label']}]({config['repo_url'].rstrip('/')}/blob/main/{path}{match['fragment'] or ''})"
        return f"`{path}`" if match["label"].strip("`") == path else f"{match['label']} (`{path}`)"

    return _OUTSIDE_LINK.sub(rewrite, markdown)


def on_env(env: Any, config: Any, files: Any) -> Any:
    """Runs once every page is rendered, so the pages' anchors are known."""
    docs_dir = Path(config["docs_dir"]).resolve()
    for name in _REPOSITORY_MARKDOWN:
        source = docs_dir.parent / name
        text = _FENCE.sub("", source.read_text(encoding="utf-8"))
        for match in _LINK.finditer(text):
            target = match["target"]
            if "://" in target or target.startswith("mailto:"):
                continue
            path = (source.parent / target).resolve() if target else source
            anchors = _anchors(path, docs_dir, files)
            if not path.exists():
                log.warning("%s links to %s, which does not exist", name, target)
            elif match["fragment"] and anchors is not None and match["fragment"] not in anchors:
                log.warning("%s links to %s#%s, which has no such anchor", name, target, match["fragment"])
    return env


def _anchors(path: Path, docs_dir: Path, files: Any) -> set[str] | None:
    """The anchors of a Markdown file: as MkDocs rendered them for a page of the docs, as GitHub makes them else."""
    if path.suffix != ".md" or not path.exists():
        return None
    if docs_dir in path.parents:
        file = files.get_file_from_path(path.relative_to(docs_dir).as_posix())
        return set(file.page.present_anchor_ids or ()) if file is not None and file.page is not None else None
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_slug(heading) for heading in _HEADING.findall(text)} | set(_ANCHOR.findall(text))


def _slug(heading: str) -> str:
    text = unicodedata.normalize("NFKD", re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)).lower()
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text).strip())
