"""LVM glue without device-mapper: the --config that fences LVM to the image's devices,
reports parsed from recorded output (lvm2 2.03.16 on this project's hosts), the checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmimport import HostUnsupported, VmImportError, lvm

# `lvs --readonly --reportformat json -o vg_name,lv_name,lv_dm_path,lv_path` on an image
# whose VG "vg-guest" holds "root" and "var-lib" (recorded; note the doubled dashes).
LVS = """\
  {
      "report": [
          {
              "lv": [
                  {"vg_name":"vg-guest", "lv_name":"root", "lv_dm_path":"/dev/mapper/vg--guest-root", "lv_path":"/dev/vg-guest/root"},
                  {"vg_name":"vg-guest", "lv_name":"var-lib", "lv_dm_path":"/dev/mapper/vg--guest-var--lib", "lv_path":"/dev/vg-guest/var-lib"}
              ]
          }
      ]
  }
"""  # noqa: E501
VGS = '  {\n      "report": [\n          {\n              "vg": [\n                  {"vg_name":"tvg", "pv_count":"1"}\n              ]\n          }\n      ]\n  }\n'  # noqa: E501


def test_reports_parsed() -> None:
    rows = lvm.parse_report(LVS, "lv")
    assert [(r["vg_name"], r["lv_name"], r["lv_dm_path"]) for r in rows] == [
        ("vg-guest", "root", "/dev/mapper/vg--guest-root"),
        ("vg-guest", "var-lib", "/dev/mapper/vg--guest-var--lib"),
    ]
    assert lvm.parse_report(VGS, "vg") == [{"vg_name": "tvg", "pv_count": "1"}]
    assert lvm.parse_report(VGS, "lv") == []


def test_config_sees_only_the_image_and_activates_read_only() -> None:
    config = lvm.lvm_config(["/dev/loop4", "/dev/loop5"], read_only_vgs=["vg-guest"])
    assert 'filter=["a|^/dev/loop4$|","a|^/dev/loop5$|","r|.*|"]' in config
    assert 'global_filter=["a|^/dev/loop4$|","a|^/dev/loop5$|","r|.*|"]' in config
    assert "use_devicesfile=0" in config
    assert 'read_only_volume_list=["vg-guest"]' in config
    assert "backup=0 archive=0" in config  # never writes /etc/lvm/backup on the host
    assert "udev_sync=0" in config
    assert "read_only_volume_list" not in lvm.lvm_config(["/dev/loop4"])


def test_name_clash_refused() -> None:
    lvm.check_names(["vg-guest"], ["debian-vg"])
    with pytest.raises(VmImportError, match="same name") as err:
        lvm.check_names(["debian-vg"], ["debian-vg"])
    assert "vgimportclone" in (err.value.hint or "")


def test_device_mapper_is_read_from_proc_misc(tmp_path: Path) -> None:
    misc = tmp_path / "misc"
    misc.write_text("234 btrfs-control\n237 loop-control\n")
    assert not lvm.device_mapper_available(str(misc))
    misc.write_text("236 device-mapper\n237 loop-control\n")
    assert lvm.device_mapper_available(str(misc))


def test_host_support_names_the_missing_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lvm, "have_tools", lambda *names: ["vgchange"])
    with pytest.raises(HostUnsupported, match="LVM tools are missing") as err:
        lvm.host_support()
    assert err.value.hint == "apt-get install lvm2"
    monkeypatch.setattr(lvm, "have_tools", lambda *names: [])
    monkeypatch.setattr(lvm, "device_mapper_available", lambda: False)
    with pytest.raises(HostUnsupported, match="no device-mapper") as err:
        lvm.host_support()
    assert "modprobe dm_mod" in (err.value.hint or "")
