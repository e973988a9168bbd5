#!/usr/bin/env python3
"""Zero every fragment of a UFS2 image that is no metadata (usage: scrub-data.py IMG CSADDR CSSIZE).

Made fsck-y-not-converging.img.gz from the 21 MB report image: the superblocks, cylinder
groups, inodes, summary, directory, symlink and indirect blocks stay; fsck's transcripts of
the result (-n, -y, -n after) are byte for byte those of the original. CSADDR and CSSIZE
are dumpfs's csaddr and cssize."""
import struct, sys
img = sys.argv[1]
f = open(img, "r+b")
f.seek(65536); sb = f.read(1536)
g = lambda o: struct.unpack_from("<i", sb, o)[0]
fsize, bsize, fpg, ipg, iblkno, dblkno, sblkno, ncg, frag = g(52), g(48), g(188), g(184), g(16), g(20), g(8), g(44), g(56)
size = struct.unpack_from("<q", sb, 1080)[0]
csaddr, cssize = int(sys.argv[2]), int(sys.argv[3])
nindir = bsize // 8
print("fsize", fsize, "bsize", bsize, "fpg", fpg, "ipg", ipg, "ncg", ncg, "size", size, "dblkno", dblkno, "csaddr", csaddr, "cssize", cssize)
def ioff(ino): return (fpg * (ino // ipg) + iblkno) * fsize + (ino % ipg) * 256
def ptrs(blk):
    f.seek(blk * fsize); b = f.read(bsize)
    return [p for p in struct.unpack("<%dq" % nindir, b)]
meta, data = set(), set()
def addblk(s, p):
    if 0 < p < size:
        for i in range(frag):
            if p + i < size: s.add(p + i)
for c in range(ncg):
    for x in range(fpg * c, fpg * c + dblkno): meta.add(x)
for x in range(csaddr, csaddr + (cssize + fsize - 1) // fsize + frag): meta.add(x)
for ino in range(ipg * ncg):
    f.seek(ioff(ino)); b = f.read(256)
    mode = struct.unpack_from("<H", b, 0)[0]
    if mode == 0: continue
    typ = mode & 0o170000
    db = struct.unpack_from("<12q", b, 112); ib = struct.unpack_from("<3q", b, 208)
    target = data if typ == 0o100000 else meta
    for p in db: addblk(target, p)
    def walk(p, level):
        if not (0 < p < size): return
        addblk(meta, p)
        for q in ptrs(p):
            if level == 0: addblk(target, q)
            else: walk(q, level - 1)
    for lvl, p in enumerate(ib): walk(p, lvl)
zero = [x for x in range(size) if x not in meta]
for x in zero:
    f.seek(x * fsize); f.write(bytes(fsize))
print("meta frags", len(meta), "data frags", len(data), "zeroed", len(zero))
