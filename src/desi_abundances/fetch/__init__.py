"""Fetching the files of a public release over HTTPS: which coadds a run needs
(:mod:`.plan`), DESI's checksum files (:mod:`.checksums`) and a resumable, verified, parallel
download (:mod:`.download`, with ``requests``). No Kedro here: ``pipelines/fetch`` is glue."""
from desi_abundances.fetch.checksums import parse_checksum_file
from desi_abundances.fetch.download import DownloadError, FetchSettings, fetch_files
from desi_abundances.fetch.plan import inference_coadds, training_coadds

__all__ = ["DownloadError", "FetchSettings", "fetch_files", "inference_coadds",
           "parse_checksum_file", "training_coadds"]
