"""P-256 scalar multiplication for the plain-Python ES256 of purekeys.py: a fixed-base comb for
k*G and a 4-bit window for k*Q (the curve's arithmetic is quickcert's). Not constant-time: these
are a simulator's keys, on the user's own machine."""

from __future__ import annotations

from msi_cli.store.quickcert import P, Jacobian, _add, _double

# ---- P-256 scalar multiplication (the curve's arithmetic is quickcert's) ----------------------------

# COMB[j] = the sum of 2^(64 i) * G over the bits i of j (fixed-base comb, 4 rows of 64 bits): k*G
# then takes 64 doublings and at most 64 additions, where a 4-bit window takes 256 and 64. The
# tests recompute the table from G.
COMB: tuple[tuple[int, int], ...] = (
    (0, 0),  # unused: j = 0 adds nothing
    (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296, 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5),
    (0x0FA822BC2811AAA58492592E326E25DE29493BAAAD651F7E90E75CB48E14DB63, 0xBFF44AE8F5DBA80D6F4AD4BCB3DF188B34B1A65050FE82F5E41124545F462EE7),
    (0x300A4BBC89D6726FB257C0DE95E02789E96C98FD0D35F1FA93391CE2097992AF, 0x72AAC7E0D09B46447F1DDB25FF1E3C6F5BB1EEADA9D806A5AA54A291C08127A0),
    (0x447D739BEEDB5E67FB982FD588C6766EFC35FF7DC297EAC357C84FC9D789BD85, 0x2D4825AB834131EEE12E9D953A4AAFF73D349B95A7FAE5000C7E33C972E25B32),
    (0xEF9519328A9C72FFDDC6068BB91DFC60EF7FBD2B1A0A11B713949C932A1D367F, 0x611E9FC37DBB2C9BC1EE9807022C219C23183B0895CA1740196035A77376D8A8),
    (0x550663797B51F5D87DEA6482E11238BF2936DF5EC6C9BC36CAE2B1920B57F4BC, 0x157164848AECB8510AFA40018D9D50E59FB3D576DBDEFBE144FFE216348A964C),
    (0xEB5D7745B21141EAA2E8F483F43E43917CCD84E70D715F26E48ECAFFFC5CDE01, 0xEAFD72EBDBECC17B0990E6A158006CEE85F22CFE2844B645CAC917E2731A3479),
    (0xA6D39677A78492762736FF8344315FC596439591A3C6B94A6CF20FFB313728BE, 0x674F84749B0B881666B8BABD2D27ECDF824A920C2284059BF2BAB833C357F5F4),
    (0x4E769E7672C9DDAD31855F7DB8C7FEDB74E02F080203A56B2DF48C04677C8A3E, 0x42B99082DE8306631EC0057206947281FB9AE16F3B9122A5A4C36165B824BBB0),
    (0x78878EF61C6CE04D7FDC1CA008A1C478D1F89E799C0CE1316EF95150DDA868B9, 0xB6CB3F5D7B72C321DE53142C12309DEF6ACE570EBDE08D4F9C62B9121FE0D976),
    (0x0C88BC4D716B1287595C5220812FFCAE5B82DD5BD54FB4967F991ED2C31A3573, 0xDD5DDEA3F3901DC618D1B5B39C04E6AA7C8181F4DF2564F33A57BF635F48ACA8),
    (0x68F344AF6B317466EFE0A423083E49F343A0A28C42BA792FE96A79FB3E72AD0C, 0x31B9C405F8540A20604ED93C24D67FF3668BFC2271F5C626CDFE17DB3FB24D4A),
    (0x4052BF4B6F461DB9663C62C3EDBAD7A00D1A10144EC39C28D36B4789A2582E7F, 0xFECF4D5190B0FC61862BE6BD71D70CC8E724F33999BFCC5B235A27C3188D25EB),
    (0x1EDDBAE2C802E41A123202A8F62BFF7AAFDF5CC08526A7A474346C10A1D4CFAC, 0x43104D86560EBCFC0C45F45273DB33A036E06B7E4C7019178FA0AF2DD603F844),
    (0xB48E26B484F7A21C0A4A46FB6AAF363A66B0DE3225C4744B9615B5110D1D78E5, 0xFAC015404D4D3DAB64131BCDFED6F668C004E4048B7B0F9806EBB0F621A01B2D),
)


def add_affine(p1: Jacobian | None, x2: int, y2: int) -> Jacobian | None:
    """p1 + (x2, y2), the second point affine (madd-2007-bl)."""
    if p1 is None:
        return x2, y2, 1
    x1, y1, z1 = p1
    z1z1 = z1 * z1 % P
    h = (x2 * z1z1 - x1) % P
    r = 2 * (y2 * z1 * z1z1 - y1) % P
    if h == 0:
        return _double(p1) if r == 0 else None
    hh = h * h % P
    i = 4 * hh
    j = h * i % P
    v = x1 * i % P
    x3 = (r * r - j - 2 * v) % P
    y3 = (r * (v - x3) - 2 * y1 * j) % P
    z3 = ((z1 + h) * (z1 + h) - z1z1 - hh) % P
    return x3, y3, z3


def base_multiply(k: int) -> Jacobian | None:
    """k * G, by the comb."""
    acc: Jacobian | None = None
    for i in range(63, -1, -1):
        acc = _double(acc)
        j = (k >> i & 1) | (k >> (i + 63) & 2) | (k >> (i + 126) & 4) | (k >> (i + 189) & 8)
        if j:
            acc = add_affine(acc, *COMB[j])
    return acc


def multiply(k: int, point: tuple[int, int]) -> Jacobian | None:
    """k * point, with a 4-bit window."""
    table: list[Jacobian | None] = [None, (point[0], point[1], 1)]
    for _ in range(14):
        table.append(_add(table[-1], table[1]))
    acc: Jacobian | None = None
    for shift in range(252, -1, -4):
        for _ in range(4):
            acc = _double(acc)
        acc = _add(acc, table[(k >> shift) & 15])
    return acc


def affine(point: Jacobian | None) -> tuple[int, int] | None:
    if point is None:
        return None
    x, y, z = point
    zinv = pow(z, -1, P)
    zinv2 = zinv * zinv % P
    return x * zinv2 % P, y * zinv2 * zinv % P
