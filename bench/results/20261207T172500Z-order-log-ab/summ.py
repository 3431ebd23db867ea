import re,glob,os,sys,statistics
d=sys.argv[1]
data={}  # (scenario@rate, figure) -> {label: {round: val}}
for f in sorted(glob.glob(d+'/*.md')):
    b=os.path.basename(f)[:-3]
    m=re.match(r'(before|after)-(.+)-r(\d+)$',b)
    if not m: continue
    label,name,r=m.group(1),m.group(2),int(m.group(3))
    for line in open(f):
        c=[x.strip() for x in line.strip().strip('|').split('|')]
        if name.startswith('idle') and len(c)==8 and c[0]=='waterspout':
            data.setdefault((name,'KB/conn PSS'),{}).setdefault(label,{})[r]=float(c[4])
        if name.startswith('fanout') and len(c)>=18 and c[1]=='waterspout':
            key=f"{c[0]}@{c[4]}"
            data.setdefault((key,'p99 ms'),{}).setdefault(label,{})[r]=float(c[10])
            data.setdefault((key,'us CPU/deliv'),{}).setdefault(label,{})[r]=float(c[15])
print('| scenario @ deliveries/s | figure | before (rounds) | after (rounds) | after ÷ before (median of per-round ratios) |')
print('|---|---|---|---|---|')
for (k,fig),v in sorted(data.items()):
    b,a=v.get('before',{}),v.get('after',{})
    rs=sorted(set(b)&set(a))
    ratios=[a[r]/b[r] for r in rs if b[r]]
    med=statistics.median(ratios) if ratios else float('nan')
    print(f"| {k} | {fig} | {' / '.join(str(b[r]) for r in rs)} | {' / '.join(str(a[r]) for r in rs)} | {med:.2f} |")
