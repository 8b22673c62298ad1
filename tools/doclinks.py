"""Checks markdown links in README.md and docs/*.md point to existing files (and anchors to headings)."""
import re,os,glob,sys
def anchors(path):
    out=set();fence=False
    for l in open(path):
        if l.startswith('```'): fence=not fence
        if fence: continue
        m=re.match(r'^#+ (.*)',l)
        if m:
            t=m.group(1).strip().lower()
            t=re.sub(r'[^\w\- ]','',t).replace(' ','-')
            out.add(t)
    return out
bad=0
for f in ['README.md']+sorted(glob.glob('docs/*.md')):
    text=open(f).read()
    text=re.sub(r'```.*?```','',text,flags=re.S)
    for m in re.finditer(r'\]\(([^)\s]+)\)',text):
        t=m.group(1)
        if t.startswith('http'): continue
        p,_,a=t.partition('#')
        tgt=os.path.normpath(os.path.join(os.path.dirname(f),p)) if p else f
        if not os.path.exists(tgt): print(f,'missing',t); bad+=1; continue
        if a and tgt.endswith('.md') and a not in anchors(tgt): print(f,'no anchor',t); bad+=1
    # backticked repo paths
    for m in re.finditer(r'`((?:optdsl-(?:lang|macros|runtime)|src|tests|tools|examples|docs|fuzz|\.ci)/[^` ]*)`',text):
        p=m.group(1)
        if any(c in p for c in '*{<'): 
            base=p.split('*')[0].split('{')[0].split('<')[0]
            p=os.path.dirname(base) or base
        cands=[p, os.path.join(os.path.dirname(f),p)]
        if not any(os.path.exists(c) for c in cands): print(f,'path?',m.group(1)); bad+=1
print('bad',bad); sys.exit(1 if bad else 0)
