"""A small QR code reader for tests (ISO/IEC 18004, model 2, versions 1-9): from a module matrix, or from the SVG
path segno writes, back to the text. It checks the format bits and every block's Reed-Solomon syndromes, so a
code that a phone would have to repair does not pass. Written from the standard, independent of segno."""
from __future__ import annotations

import re

# (error-correction codewords per block, number of blocks) by version, for the levels L, M, Q, H
EC_BLOCKS = {
    1: {"L": (7, 1), "M": (10, 1), "Q": (13, 1), "H": (17, 1)},
    2: {"L": (10, 1), "M": (16, 1), "Q": (22, 1), "H": (28, 1)},
    3: {"L": (15, 1), "M": (26, 1), "Q": (18, 2), "H": (22, 2)},
    4: {"L": (20, 1), "M": (18, 2), "Q": (26, 2), "H": (16, 4)},
    5: {"L": (26, 1), "M": (24, 2), "Q": (18, 4), "H": (22, 4)},
    6: {"L": (18, 2), "M": (16, 4), "Q": (24, 4), "H": (28, 4)},
    7: {"L": (20, 2), "M": (18, 4), "Q": (18, 6), "H": (26, 5)},
    8: {"L": (24, 2), "M": (22, 4), "Q": (22, 6), "H": (26, 6)},
    9: {"L": (30, 2), "M": (22, 5), "Q": (20, 8), "H": (24, 8)},
}
LEVELS = {1: "L", 0: "M", 3: "Q", 2: "H"}  # the two format bits
MASKS = [lambda r, c: (r + c) % 2 == 0, lambda r, c: r % 2 == 0, lambda r, c: c % 3 == 0,
         lambda r, c: (r + c) % 3 == 0, lambda r, c: (r // 2 + c // 3) % 2 == 0,
         lambda r, c: (r * c) % 2 + (r * c) % 3 == 0, lambda r, c: ((r * c) % 2 + (r * c) % 3) % 2 == 0,
         lambda r, c: ((r + c) % 2 + (r * c) % 3) % 2 == 0]
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def decode(matrix: list[list[int]]) -> dict:
    """{"text", "version", "level", "mask"} of a QR matrix (rows of 0/1, no quiet zone); AssertionError if
    it is not a valid code."""
    n = len(matrix)
    version = (n - 17) // 4
    assert n == 17 + 4 * version and version in EC_BLOCKS and all(len(row) == n for row in matrix), n
    level, mask = _format(matrix)
    function = _function_modules(version)
    bits = []
    for r, c in _zigzag(n):
        if not function[r][c]:
            bits.append(matrix[r][c] ^ MASKS[mask](r, c))
    codewords = [int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits) - 7, 8)]
    data = _deinterleave(codewords, *EC_BLOCKS[version][level])
    return {"text": _segments(data, version), "version": version, "level": level, "mask": mask}


def _format(m: list[list[int]]) -> tuple[str, int]:
    n = len(m)
    first = [m[8][c] for c in (0, 1, 2, 3, 4, 5, 7, 8)] + [m[r][8] for r in (7, 5, 4, 3, 2, 1, 0)]
    second = [m[r][8] for r in range(n - 1, n - 8, -1)] + [m[8][c] for c in range(n - 8, n)]
    assert m[n - 8][8] == 1, "the dark module is missing"
    for bits in (first, second):  # bit 14 first
        word = int("".join(map(str, bits)), 2)
        for data in range(32):  # the 32 valid words: exact match only, no correction
            if _format_word(data) == word:
                return LEVELS[data >> 3], data & 7
    raise AssertionError("no valid format information")


def _format_word(data: int) -> int:
    rem = data
    for _ in range(10):
        rem = (rem << 1) ^ ((rem >> 9) * 0x537)
    return ((data << 10) | rem) ^ 0x5412


def _alignment_centres(version: int) -> list[int]:
    if version == 1:
        return []
    count = version // 7 + 2
    size = 17 + 4 * version
    step = (version * 8 + count * 3 + 5) // (count * 4 - 4) * 2
    return [6] + sorted(size - 7 - i * step for i in range(count - 1))


def _function_modules(version: int) -> list[list[bool]]:
    n = 17 + 4 * version
    f = [[False] * n for _ in range(n)]

    def mark(r0: int, c0: int, h: int, w: int) -> None:
        for r in range(max(0, r0), min(n, r0 + h)):
            for c in range(max(0, c0), min(n, c0 + w)):
                f[r][c] = True

    for r0, c0 in ((0, 0), (0, n - 8), (n - 8, 0)):  # finders with their separators
        mark(r0, c0, 8, 8)
    mark(6, 0, 1, n), mark(0, 6, n, 1)  # timing
    mark(0, 8, 9, 1), mark(8, 0, 1, 9), mark(8, n - 8, 1, 8), mark(n - 8, 8, 8, 1)  # format (and the dark module)
    centres = _alignment_centres(version)
    for r in centres:
        for c in centres:
            if not ((r == 6 and c == 6) or (r == 6 and c == n - 7) or (r == n - 7 and c == 6)):
                mark(r - 2, c - 2, 5, 5)
    if version >= 7:
        mark(0, n - 11, 6, 3), mark(n - 11, 0, 3, 6)  # version information
    return f


def _zigzag(n: int):
    right = n - 1
    while right >= 1:
        if right == 6:
            right = 5  # the vertical timing column is skipped
        upward = ((right + 1) & 2) == 0
        for i in range(n):
            r = n - 1 - i if upward else i
            for c in (right, right - 1):
                yield r, c
        right -= 2


def _deinterleave(codewords: list[int], ec_per_block: int, blocks: int) -> list[int]:
    total = len(codewords)
    short = total // blocks
    n_short = blocks - total % blocks
    data_len = [short - ec_per_block + (0 if j < n_short else 1) for j in range(blocks)]
    data = [[] for _ in range(blocks)]
    pos = 0
    for i in range(max(data_len)):
        for j in range(blocks):
            if i < data_len[j]:
                data[j].append(codewords[pos])
                pos += 1
    ecc = [[] for _ in range(blocks)]
    for _ in range(ec_per_block):
        for j in range(blocks):
            ecc[j].append(codewords[pos])
            pos += 1
    for j in range(blocks):
        assert _syndromes_zero(data[j] + ecc[j], ec_per_block), f"block {j} fails its Reed-Solomon check"
    return [b for block in data for b in block]


def _gf_tables():
    exp, log = [0] * 512, [0] * 256
    x = 1
    for i in range(255):
        exp[i], log[x] = x, i
        x <<= 1
        if x & 0x100:
            x ^= 0x11D
    for i in range(255, 512):
        exp[i] = exp[i - 255]
    return exp, log


_EXP, _LOG = _gf_tables()


def _syndromes_zero(block: list[int], ec: int) -> bool:
    for i in range(ec):  # the generator's roots are alpha^0 .. alpha^(ec-1)
        s = 0
        for b in block:
            s = (_EXP[_LOG[s] + i] if s else 0) ^ b
        if s:
            return False
    return True


def _segments(data: list[int], version: int) -> str:
    bits = "".join(f"{b:08b}" for b in data)
    pos, out = 0, bytearray()

    def take(k: int) -> int:
        nonlocal pos
        value = int(bits[pos:pos + k], 2)
        pos += k
        return value

    while pos + 4 <= len(bits):
        mode = take(4)
        if mode == 0:  # terminator
            break
        if mode == 0b0100:  # bytes
            out += bytes(take(8) for _ in range(take(8 if version < 10 else 16)))
        elif mode == 0b0010:  # alphanumeric
            count = take(9 if version < 10 else 11)
            for _ in range(count // 2):
                v = take(11)
                out += (ALNUM[v // 45] + ALNUM[v % 45]).encode()
            if count % 2:
                out += ALNUM[take(6)].encode()
        elif mode == 0b0001:  # numeric
            count = take(10 if version < 10 else 12)
            while count >= 3:
                out += f"{take(10):03d}".encode()
                count -= 3
            if count:
                out += f"{take(7 if count == 2 else 4):0{count}d}".encode()
        elif mode == 0b0111:  # ECI designator (UTF-8 is 26): the bytes that follow are still bytes
            take(8)
        else:
            raise AssertionError(f"unsupported mode {mode:04b}")
    return out.decode("utf-8")


def matrix_from_svg(svg: str) -> list[list[int]]:
    """The module matrix of a segno SVG (one path of horizontal strokes, ``h`` runs along rows at ``y + 0.5``),
    without its quiet zone."""
    view = re.search(r'viewBox="0 0 (\d+) (\d+)"', svg) or re.search(r'width="(\d+)" height="(\d+)"', svg)
    size = int(view.group(1))
    path = re.search(r'class="qrline"[^>]*\sd="([^"]+)"', svg).group(1)
    grid = [[0] * size for _ in range(size)]
    x = y = 0.0
    for cmd, args in re.findall(r"([MmHh])([^MmHh]+)", path):
        nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", args)]
        if cmd in "Mm":
            x, y = (nums[0], nums[1]) if cmd == "M" else (x + nums[0], y + nums[1])
        else:
            end = nums[0] if cmd == "H" else x + nums[0]
            for col in range(int(x), int(end)):
                grid[int(y)][col] = 1
            x = end
    rows = [r for r in range(size) if any(grid[r])]
    cols = [c for c in range(size) if any(grid[r][c] for r in range(size))]
    return [row[cols[0]:cols[-1] + 1] for row in grid[rows[0]:rows[-1] + 1]]


def matrix_from_pixels(gray, modules: range = range(21, 54, 4)) -> list[list[int]]:
    """The module matrix of a screenshot of a QR code (a PIL image in mode "L" with a light quiet zone): the dark
    bounding box, sampled at module centres for each possible size until one decodes."""
    dark = [(x, y) for y in range(gray.height) for x in range(gray.width) if gray.getpixel((x, y)) < 128]
    x0, x1 = min(x for x, _ in dark), max(x for x, _ in dark)
    y0 = min(y for _, y in dark)
    for n in modules:
        step = (x1 - x0 + 1) / n
        m = [[int(gray.getpixel((int(x0 + (c + .5) * step), int(y0 + (r + .5) * step))) < 128) for c in range(n)]
             for r in range(n)]
        try:
            decode(m)
            return m
        except (AssertionError, IndexError):
            continue
    raise AssertionError("no QR code size fits these pixels")
