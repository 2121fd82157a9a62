"""``--push-to-hub REPO``: upload an exported folder with ``huggingface_hub``.

Whether the upload can happen is checked before anything is exported (a model export can take
minutes): a login (``hf auth login`` or ``HF_TOKEN``), the Hub not switched off
(``HF_HUB_OFFLINE``), and the token accepted by the Hub. Each failure is one line.
"""

from __future__ import annotations

from rzero_pl.errors import one_line

LOGIN = "run `hf auth login` (or set HF_TOKEN) first"


def hub_token(repo: str) -> str:
    """The token to upload ``repo`` with; a one-line ``ValueError`` when there is none to use."""
    from huggingface_hub import constants, get_token

    if "/" not in repo:
        raise ValueError(f"--push-to-hub: {repo!r} is not a repository id; give OWNER/NAME")
    token = get_token()
    if not token:
        raise ValueError(f"--push-to-hub {repo}: not logged in to the Hugging Face Hub; {LOGIN}")
    if constants.HF_HUB_OFFLINE:
        raise ValueError(
            f"--push-to-hub {repo}: the Hub is switched off here (HF_HUB_OFFLINE is set); "
            "unset it to upload, or export without --push-to-hub and upload the folder later"
        )
    from huggingface_hub import HfApi

    try:
        HfApi(token=token).whoami()
    except Exception as err:  # noqa: BLE001  no network, a revoked token, a Hub outage
        raise ValueError(
            f"--push-to-hub {repo}: the Hub did not accept the login ({one_line(str(err))}); "
            f"check the network, or {LOGIN}"
        ) from None
    return token


def push(folder: str, repo: str, token: str, repo_type: str, private: bool) -> str:
    """Create ``repo`` if needed and upload ``folder`` to it; return the commit's URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        api.create_repo(repo, repo_type=repo_type, private=private, exist_ok=True)
        info = api.upload_folder(
            folder_path=folder,
            repo_id=repo,
            repo_type=repo_type,
            commit_message="Upload with rzero-pl export",
        )
    except Exception as err:  # noqa: BLE001  every Hub error is one line naming the repo
        raise ValueError(f"--push-to-hub {repo}: upload failed ({one_line(str(err))})") from None
    return str(getattr(info, "commit_url", info))
