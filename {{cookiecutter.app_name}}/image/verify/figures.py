"""What hardening changed, in numbers (`make image-figures`): size, tools, privilege bits."""

import argparse
import os

from rootfs import image_env, image_rootfs, inspect


def measure(engine: str, image: str) -> tuple[float, int, int]:
    """(size in MB, executables reachable on PATH, setuid/setgid files) of one image."""
    size = int(inspect(engine, "image", image)["Size"])
    search_path = image_env(engine, image).get("PATH", "/usr/bin:/bin")
    fs = image_rootfs(engine, image, wanted=lambda _: False)
    return size / 1e6, len(fs.executables_on_path(search_path)), len(fs.privileged())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", default=os.environ.get("ENGINE", "docker"))
    parser.add_argument("--image", required=True)
    parser.add_argument("--base-image", required=True)
    args = parser.parse_args()
    base, hardened = measure(args.engine, args.base_image), measure(args.engine, args.image)
    print(f"{'figure':<28} | {'base':>10} | {'hardened':>10}")
    print(f"{'-' * 28}-|-{'-' * 10}-|-{'-' * 10}")
    print(f"{'image size (MB)':<28} | {base[0]:>10.1f} | {hardened[0]:>10.1f}")
    print(f"{'executables on PATH':<28} | {base[1]:>10} | {hardened[1]:>10}")
    print(f"{'setuid/setgid files':<28} | {base[2]:>10} | {hardened[2]:>10}")
    print(f"base: {args.base_image}\nhardened: {args.image}")


if __name__ == "__main__":
    main()
