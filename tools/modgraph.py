"""Module import graph of a Rust source tree; prints strongly connected components (import circles)."""
import re,sys,os
root=sys.argv[1]; base=sys.argv[2].split('::') if len(sys.argv)>2 else []
files={}
for dp,dn,fn in os.walk(root):
    for f in fn:
        if not f.endswith('.rs'): continue
        p=os.path.join(dp,f); rel=os.path.relpath(p,root)
        parts=rel[:-3].split('/')
        if parts[-1] in('mod','lib','main'): parts=parts[:-1]
        files[tuple(base+parts)]=p
def resolve(path):
    # longest prefix that is a module file
    for i in range(len(path),0,-1):
        if tuple(path[:i]) in files: return tuple(path[:i])
    return None
g={}
for mod,p in files.items():
    src=open(p).read()
    src=re.split(r'#\[cfg\(test\)\]\s*mod tests',src)[0]
    src=re.sub(r'//[^\n]*','',src)
    deps=set()
    for m in re.finditer(r'\b((?:crate|super|self)(?:::\w+)+)',src):
        segs=m.group(1).split('::')
        if segs[0]=='crate': path=segs[1:]
        else:
            cur=list(mod) if not p.endswith(('mod.rs','lib.rs','main.rs')) else list(mod)
            # for a file module foo.rs, self = foo, super = parent
            path=list(mod)
            while segs and segs[0] in('super','self'):
                if segs[0]=='super': path=path[:-1]
                segs=segs[1:]
            path=path+segs
        r=resolve(path)
        if r and r!=mod: deps.add(r)
    # use groups: crate::{a, b::c}
    for m in re.finditer(r'use crate::\{([^;]*)\};',src):
        for item in re.findall(r'(?:^|[,{]\s*)(\w+)',m.group(1)):
            r=resolve([item])
            if r and r!=mod: deps.add(r)
    g[mod]=deps
# collapse to a chosen depth
depth=int(os.environ.get('DEPTH','1'))+len(base)
def cut(m): return m[:depth]
G={}
for a,ds in g.items():
    G.setdefault(cut(a),set())
    for d in ds:
        if cut(d)!=cut(a): G[cut(a)].add(cut(d))
        if len(d)>len(base) and len(a)>len(base) and d[:len(base)+1]==a[:len(base)+1] and cut(d)==cut(a):
            pass
for d in list(G.values()):
    for x in d: G.setdefault(x,set())
idx={};low={};st=[];on=set();res=[];c=[0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
    for w in G[v]:
        if w not in idx: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],idx[w])
    if low[v]==idx[v]:
        comp=[]
        while True:
            w=st.pop();on.discard(w);comp.append(w)
            if w==v:break
        if len(comp)>1: res.append(comp)
for v in list(G):
    if v not in idx: sc(v)
for comp in res:
    names=sorted('::'.join(x) for x in comp)
    print('cycle:',names)
    for a in sorted(comp):
        print('   ','::'.join(a),'->',sorted('::'.join(x) for x in G[a]&set(comp)))
print('no import circles' if not res else '%d circles'%len(res))
sys.exit(1 if res else 0)
