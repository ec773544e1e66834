"""setup.cfg lists packages explicitly (find: cannot follow package_dir): keep the list complete."""

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPING = {"interactive_eyes": "interactive_eyes", "interactive_eyes.metrics": "metrics",
           "interactive_eyes.baselines": "baselines", "interactive_eyes.manifests": "data/manifests"}


def test_every_package_folder_is_listed_in_setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    found = set()
    for pkg, folder in MAPPING.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([pkg, *rel.parts]))
    assert found - listed == set(), f"add to setup.cfg [options] packages: {sorted(found - listed)}"


def test_manifest_is_package_data():
    from interactive_eyes.data.manifest import default_manifest_path

    assert default_manifest_path().is_file()
