"""The owner's upload: the manifest that describes it (never a key), the key plan and the batch
calls that encrypt, decrypt or fold many files into a folder (:func:`encrypt_files`,
:func:`decrypt_files`, :func:`fold_files`, each returning a :class:`BatchSummary`), the readers
of sharded uploads (:func:`read_shards`, :class:`ShardSet`), and the simulated owner that
encrypts a training set once for a run."""

from keyless.upload._batch import (
    BatchSummary,
    create_key_file,
    decrypt_files,
    encrypt_files,
    fold_files,
    run_batch,
)
from keyless.upload._jobs import (
    Job,
    KeyPlan,
    check_written,
    output_path,
    plan_jobs,
    run_jobs,
    transform_file,
)
from keyless.upload._manifest import (
    MANIFEST,
    Manifest,
    check_decryption,
    check_resume,
    describe,
    load_received,
    open_upload,
    read_shards,
    upload_root,
)
from keyless.upload._owner import (
    PLAIN_SOURCE,
    ClientAugment,
    Upload,
    data_source,
    derived_source,
    hold_out,
    owner_key,
    prepare_upload,
    receive_upload,
    split_data,
    upload_config,
)
from keyless.upload._shards import ShardSet
from keyless.upload._stream import read_ahead, read_parts, scored_parts

__all__ = [
    "MANIFEST",
    "PLAIN_SOURCE",
    "BatchSummary",
    "ClientAugment",
    "Job",
    "KeyPlan",
    "Manifest",
    "ShardSet",
    "Upload",
    "check_decryption",
    "check_resume",
    "check_written",
    "create_key_file",
    "data_source",
    "decrypt_files",
    "derived_source",
    "describe",
    "encrypt_files",
    "fold_files",
    "hold_out",
    "load_received",
    "open_upload",
    "output_path",
    "owner_key",
    "plan_jobs",
    "prepare_upload",
    "read_ahead",
    "read_parts",
    "read_shards",
    "receive_upload",
    "run_batch",
    "run_jobs",
    "scored_parts",
    "split_data",
    "transform_file",
    "upload_config",
    "upload_root",
]
