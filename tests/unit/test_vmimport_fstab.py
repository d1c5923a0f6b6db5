"""A guest's fstab: parsing, what each entry is, which of the image's volumes it names,
and the mount plan with what is dropped and why."""

from __future__ import annotations

from vmimport import fstab
from vmimport.fstab import Kind, parse, resolve
from vmimport.lvm import LogicalVolume
from vmimport.root import RootCandidate, plan_mounts
from vmimport.volumes import Volume

ROOT = Volume(
    "/dev/loop11", 40 << 20, "ext4", uuid="1b6a0000-0000-4000-8000-000000000001",
    number=2, partuuid="aa000000-0000-4000-8000-000000000002", label="rootfs",
)  # fmt: skip
BOOT = Volume(
    "/dev/loop10", 16 << 20, "ext4", uuid="1b6a0000-0000-4000-8000-00000000000b",
    number=1, partuuid="aa000000-0000-4000-8000-000000000001", label="BOOT", partlabel="boot",
)  # fmt: skip
SWAP = Volume("/dev/loop12", 8 << 20, "swap", uuid="5a000000-0000-4000-8000-000000000000", number=3)
EFI = Volume("/dev/loop13", 8 << 20, "vfat", uuid="ABCD-1234", number=4)
HOME_LV = Volume(
    "/dev/mapper/vg--guest-home", 8 << 20, "xfs", uuid="40000000-0000-4000-8000-000000000000",
    lv=LogicalVolume("vg-guest", "home", "/dev/mapper/vg--guest-home", "/dev/vg-guest/home"),
)  # fmt: skip
LUKS = Volume(
    "/dev/loop14", 8 << 20, "crypto_LUKS", uuid="c0000000-0000-4000-8000-0000000000c0", number=5
)
VOLUMES = [BOOT, ROOT, SWAP, EFI, HOME_LV, LUKS]


def test_parse_skips_comments_and_unescapes_octal() -> None:
    entries = parse(
        "# comment\n\n"
        "UUID=abc  /  ext4  errors=remount-ro  0 1\n"
        "LABEL=My\\040Data  /srv/my\\040data/  ext4\n"
        "short line\n"
    )
    assert [(e.spec, e.target, e.fstype, e.options, e.line) for e in entries] == [
        ("UUID=abc", "/", "ext4", ("errors=remount-ro",), 3),
        ("LABEL=My Data", "/srv/my data", "ext4", ("defaults",), 4),
    ]


def test_kinds() -> None:
    text = """
    /dev/sda3 none swap sw 0 0
    nas:/export /srv/nfs nfs defaults 0 0
    //nas/share /srv/smb cifs credentials=/etc/c 0 0
    UUID=x /srv/iscsi ext4 _netdev 0 0
    host:/ /srv/ssh fuse.sshfs defaults 0 0
    tmpfs /tmp tmpfs defaults 0 0
    proc /proc proc defaults 0 0
    /srv/a /srv/b none bind 0 0
    /dev/sr0 /media/cdrom udf,iso9660 user,noauto 0 0
    /dev/sr0 /media/cd iso9660 noauto 0 0
    UUID=y /home ext4 defaults 0 2
    """
    assert [e.kind for e in parse(text)] == [
        Kind.SWAP, Kind.NETWORK, Kind.NETWORK, Kind.NETWORK, Kind.NETWORK, Kind.VIRTUAL,
        Kind.VIRTUAL, Kind.BIND, Kind.REMOVABLE, Kind.REMOVABLE, Kind.FILESYSTEM,
    ]  # fmt: skip


def test_resolve_by_every_kind_of_name() -> None:
    cases = {
        "UUID=1b6a0000-0000-4000-8000-00000000000B": BOOT,  # case-insensitive
        'UUID="1b6a0000-0000-4000-8000-000000000001"': ROOT,
        "LABEL=BOOT": BOOT,
        "PARTUUID=AA000000-0000-4000-8000-000000000002": ROOT,
        "PARTLABEL=boot": BOOT,
        "/dev/disk/by-uuid/abcd-1234": EFI,
        "/dev/disk/by-label/rootfs": ROOT,
        "/dev/disk/by-partuuid/aa000000-0000-4000-8000-000000000001": BOOT,
        "/dev/sda2": ROOT,
        "/dev/mapper/vg--guest-home": HOME_LV,
        "/dev/vg-guest/home": HOME_LV,
    }
    for spec, volume in cases.items():
        assert resolve(spec, VOLUMES, "sda").volume == volume, spec


def test_resolve_labels_are_case_sensitive_and_misses_say_why() -> None:
    assert resolve("LABEL=boot", VOLUMES, None).reason == "no volume on the image has LABEL=boot"
    assert "another disk" in (resolve("/dev/sdb1", VOLUMES, "sda").reason or "")
    assert resolve("/dev/vda9", VOLUMES, "vda").reason == "the image has no partition 9"
    assert "not a logical volume" in (resolve("/dev/mapper/other", VOLUMES, None).reason or "")


def test_device_names_of_other_bus_types() -> None:
    for spec in ("/dev/vda1", "/dev/xvda1", "/dev/hda1", "/dev/nvme0n1p1", "/dev/mmcblk0p1"):
        assert resolve(spec, VOLUMES, None).volume == BOOT, spec


def test_guest_disk_comes_from_the_root_entry() -> None:
    assert fstab.guest_disk(parse("/dev/vdb2 / ext4 defaults 0 1\n")) == "vdb"
    assert fstab.guest_disk(parse("/dev/nvme0n1p2 / ext4 defaults 0 1\n")) == "nvme0n1"
    assert fstab.guest_disk(parse("UUID=x / ext4 defaults 0 1\n")) is None


def candidate(text: str, crypttab: str = "") -> RootCandidate:
    return RootCandidate(ROOT, (), text, crypttab, 'ID="debian"\n')


def test_plan_keeps_image_filesystems_parents_first_and_drops_the_rest_with_reasons() -> None:
    plan = plan_mounts(
        candidate(
            f"""
            UUID={ROOT.uuid} / ext4 defaults 0 1
            /dev/mapper/vg--guest-home /home xfs defaults 0 2
            UUID=ABCD-1234 /boot/efi vfat umask=0077 0 1
            LABEL=BOOT /boot ext4 defaults 0 2
            UUID={SWAP.uuid} none swap sw 0 0
            nas:/x /srv/nfs nfs defaults 0 0
            tmpfs /tmp tmpfs defaults 0 0
            /srv/a /srv/b none bind 0 0
            UUID=99999999-0000-4000-8000-000000000000 /data ext4 defaults 0 2
            /dev/mapper/cryptdata /secret ext4 defaults 0 2
            UUID={LUKS.uuid} /vault ext4 defaults 0 2
            LABEL=BOOT /mnt/usb ext4 noauto 0 0
            /dev/sr0 /media/cdrom iso9660 user,noauto 0 0
            """,
            crypttab="cryptdata UUID=abc none luks\n",
        ),
        VOLUMES,
    )
    assert (plan.root.volume, plan.root.target, plan.root.spec) == (ROOT, "/", f"UUID={ROOT.uuid}")
    assert [(m.target, m.volume, m.fstype) for m in plan.mounts] == [
        ("/home", HOME_LV, "xfs"),
        ("/boot", BOOT, "ext4"),
        ("/boot/efi", EFI, "vfat"),
    ]
    reasons = {d.target: d.reason for d in plan.dropped}
    assert reasons["none"].startswith("swap")
    assert reasons["/srv/nfs"].startswith("network filesystem")
    assert reasons["/tmp"].startswith("virtual filesystem")
    assert reasons["/srv/b"].startswith("bind mount")
    assert reasons["/data"] == (
        "not on the image: no volume on the image has UUID=99999999-0000-4000-8000-000000000000"
    )
    assert reasons["/secret"].startswith("encrypted volume (in /etc/crypttab)")
    assert reasons["/vault"].startswith("encrypted volume (LUKS)")
    assert reasons["/mnt/usb"].startswith("noauto")
    assert reasons["/media/cdrom"] == "removable media"
    assert [d.target for d in plan.unresolved()] == ["/data"]
    assert plan.os_release == 'ID="debian"\n'


def test_btrfs_subvolume_options_are_kept_and_a_later_entry_shadows_an_earlier() -> None:
    home = Volume(
        "/dev/loop20", 1 << 30, "btrfs", uuid="b0000000-0000-4000-8000-000000000000", number=6
    )
    plan = plan_mounts(
        candidate(
            f"UUID={home.uuid} /home btrfs subvol=@home,compress=zstd 0 0\n"
            f"UUID={BOOT.uuid} /home ext4 defaults 0 2\n"
            f"UUID={home.uuid} /home btrfs subvol=/@home2 0 0\n"
        ),
        [*VOLUMES, home],
    )
    assert [(m.target, m.options) for m in plan.mounts] == [("/home", ("subvol=/@home2",))]
    assert [d.reason for d in plan.dropped] == ["shadowed by a later entry"] * 2
