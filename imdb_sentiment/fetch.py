"""`make data`: fill data/ with Kaggle's three files.

    python -m imdb_sentiment.fetch                 # download aclImdb (official address)
    python -m imdb_sentiment.fetch --from PATH     # import a local copy

PATH may be a directory of Kaggle's files (plain or .zip), the competition's
outer zip, an aclImdb directory or aclImdb_v1.tar.gz. Kaggle's files are
copied byte for byte after being read and checked; the Stanford layout is
converted to Kaggle's format. Files already in data/ are never overwritten
unless they are identical, or --force is given.
"""

import hashlib
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from . import data, paths
from .errors import ArgumentParser, UserError, run_main

ACLIMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
ACLIMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _place(target_dir: Path, name: str, content_from, force: bool) -> str:
    """Write a file atomically; refuse to replace a different existing one."""
    target = target_dir / name
    with tempfile.NamedTemporaryFile(dir=target_dir, delete=False, suffix=".part") as tmp:
        tmp_path = Path(tmp.name)
    try:
        content_from(tmp_path)
        if target.exists():
            if _sha256_file(target) == _sha256_file(tmp_path):
                tmp_path.unlink()
                return f"{target}: already there, identical"
            if not force:
                raise UserError(f"{target}: exists with different content; "
                                "not overwritten (use `make data FORCE=1` / --force to replace it)")
        tmp_path.chmod(0o644)  # NamedTemporaryFile makes it private
        tmp_path.replace(target)
        return f"{target}: written"
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _other_form_present(target_dir: Path, name: str) -> Path | None:
    """data/x.tsv and data/x.tsv.zip side by side would be ambiguous."""
    other = target_dir / (name[:-4] if name.endswith(".zip") else name + ".zip")
    return other if other.exists() else None


def import_kaggle(source: Path, target_dir: Path, force: bool) -> list[str]:
    messages = []
    for kind, (filename, _) in data.KAGGLE_FILES.items():
        if source.is_dir():
            found = data.find_kaggle_file(source, kind)
            if found is None:
                raise UserError(f"{source}: no {filename} (nor {filename}.zip) in this folder")
            data.read_kaggle_file(found, kind)  # check before copying
            name = found.name
            copy = lambda tmp, found=found: shutil.copyfile(found, tmp)
        else:  # the competition's outer zip
            raw = data._read_member_bytes(source, filename)
            if raw is None:
                raise UserError(f"{source}: no {filename} inside")
            data.parse_kaggle_tsv(raw, kind, f"{source}!{filename}")
            name = filename
            copy = lambda tmp, raw=raw: tmp.write_bytes(raw)
        other = _other_form_present(target_dir, name)
        if other is not None and not force:
            raise UserError(f"{other}: already there in another form; remove it or use --force")
        messages.append(_place(target_dir, name, copy, force))
        if other is not None:
            other.unlink()
    return messages


def import_aclimdb(source: Path, target_dir: Path, force: bool) -> list[str]:
    messages = []
    for kind, (filename, _) in data.KAGGLE_FILES.items():
        print(f"reading {kind} reviews from {source} ...", flush=True)
        rows = data.read_aclimdb(source, kind)
        content = data.to_kaggle_tsv(rows, kind)
        messages.append(_place(target_dir, filename, lambda tmp: tmp.write_bytes(content), force))
    return messages


def _looks_like_kaggle(source: Path) -> bool:
    if source.is_dir():
        return data.find_kaggle_file(source, "labeled") is not None
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            return any("labeledTrainData" in name for name in archive.namelist())
    return False


def import_from(source: Path, target_dir: Path, force: bool = False) -> list[str]:
    source = Path(source)
    if not source.exists():
        raise UserError(f"FROM={source}: no such file or directory")
    target_dir.mkdir(parents=True, exist_ok=True)
    if _looks_like_kaggle(source):
        return import_kaggle(source, target_dir, force)
    if source.is_dir() or source.name.endswith((".tar.gz", ".tgz", ".tar")):
        return import_aclimdb(source, target_dir, force)
    raise UserError(f"FROM={source}: expected a folder of Kaggle's files, the competition zip, "
                    "an aclImdb folder or aclImdb_v1.tar.gz")


def download(target_dir: Path, force: bool = False) -> list[str]:
    target_dir.mkdir(parents=True, exist_ok=True)
    archive = target_dir / "aclImdb_v1.tar.gz"
    if not archive.exists() or _sha256_file(archive) != ACLIMDB_SHA256:
        partial = archive.with_suffix(".part")
        print(f"downloading {ACLIMDB_URL} ...", flush=True)
        try:
            with urllib.request.urlopen(ACLIMDB_URL, timeout=30) as response, open(partial, "wb") as out:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError) as error:
            partial.unlink(missing_ok=True)
            raise UserError(f"cannot download {ACLIMDB_URL} ({error}); offline? Import a local copy "
                            "instead: `make data FROM=<Kaggle folder or zip, aclImdb folder or "
                            "aclImdb_v1.tar.gz>`") from None
        if _sha256_file(partial) != ACLIMDB_SHA256:
            partial.unlink()
            raise UserError(f"{ACLIMDB_URL}: downloaded file fails its sha256 check; try again")
        partial.replace(archive)
    return import_aclimdb(archive, target_dir, force)


def main(argv=None):
    parser = ArgumentParser(prog="python -m imdb_sentiment.fetch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", type=Path, default=None,
                        help="a local copy to import instead of downloading")
    parser.add_argument("--data-dir", type=Path, default=paths.data_dir(),
                        help="where the files go")
    parser.add_argument("--force", action="store_true", help="replace different existing files")
    args = parser.parse_args(argv)
    if args.source is None:
        messages = download(args.data_dir, args.force)
    else:
        messages = import_from(args.source, args.data_dir, args.force)
    for message in messages:
        print(message)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
