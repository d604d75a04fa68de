import type { Target } from '@amitrans/guest';
import type { Outcome } from './record.js';
import { OUTCOMES, type BreakdownRow, type OutcomeCounts, type Ranked, type Report } from './report.js';

/** What each outcome is called on the page, and its colour. */
const LABELS: Record<Outcome, { text: string; colour: string }> = {
  works: { text: 'just works', colour: '#2e7d32' },
  tweaks: { text: 'needs tweaks', colour: '#f9a825' },
  wont: { text: "won't boot", colour: '#c62828' },
  error: { text: 'failed', colour: '#757575' },
};

/** Text from image records (ids, guest files' contents) never becomes markup. */
export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * report.html: one self-contained page (inline CSS, SVG and script, no external asset) that
 * says which images just work, which need tweaks, which won't, and why. It reads fine
 * without the script; the script adds sorting and filtering of the image table.
 */
export function renderReportHtml(report: Report): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>amitrans fleet report: ${report.totals.images} images</title>`,
    `<style>${CSS}</style></head>`,
    '<body>',
    `<h1>amitrans fleet report</h1>`,
    `<p class="meta">${report.totals.images} images in ${esc(report.store)}; generated ${esc(report.generated)}. <span id="totals" data-images="${report.totals.images}" data-done="${report.totals.done}" data-failed="${report.totals.failed}">${report.totals.done} done, ${report.totals.failed} failed</span>.</p>`,
    targetsSection(report),
    reasonsSection(report),
    breakdownSection(report),
    verifySection(report),
    imagesSection(report),
    `<script>${SCRIPT}</script>`,
    '</body></html>',
    '',
  ].join('\n');
}

function targetsSection(r: Report): string {
  const rows = r.targets.map((t) => {
    const c = r.byTarget[t]!;
    const cells = OUTCOMES.map((o) => `<td class="num"><span class="count" data-target="${t}" data-outcome="${o}">${c[o]}</span></td>`).join('');
    return `<tr><th scope="row">${t}</th><td>${bar(c, 360, 18)}</td>${cells}</tr>`;
  });
  const head = OUTCOMES.map((o) => `<th>${swatch(o)}${LABELS[o].text}</th>`).join('');
  return `<section id="targets"><h2>By target</h2><table class="summary"><thead><tr><th>target</th><th></th>${head}</tr></thead><tbody>${rows.join('')}</tbody></table></section>`;
}

function reasonsSection(r: Report): string {
  const parts = r.targets.map((t) => {
    const c = r.byTarget[t]!;
    return `<div class="reasons" data-target="${t}"><h3>${t}</h3>${ranked("Why they won't boot", c.wontReasons, 'wont')}${ranked('Tweaks translation makes', c.topTweaks, 'tweaks')}${ranked('What failed', c.errors, 'error')}</div>`;
  });
  return `<section id="reasons"><h2>Top reasons</h2><div class="grid">${parts.join('')}</div></section>`;
}

function ranked(title: string, list: Ranked[], kind: string): string {
  if (list.length === 0) return '';
  const items = list.slice(0, 10).map((x) => `<li><span class="n">${x.count}</span> ${esc(x.text)}</li>`).join('');
  return `<h4>${title}</h4><ol class="ranked" data-kind="${kind}">${items}</ol>`;
}

function breakdownSection(r: Report): string {
  const dims: [keyof Report['breakdowns'], string][] = [['distro', 'Distribution'], ['kernel', 'Default kernel'], ['aki', 'pv-grub AKI'], ['class', 'Class']];
  const tables = dims.map(([k, title]) => breakdownTable(title, k, r.breakdowns[k], r.targets));
  return `<section id="breakdowns"><h2>Breakdowns</h2>${tables.join('')}</section>`;
}

function breakdownTable(title: string, dim: string, rows: BreakdownRow[], targets: Target[]): string {
  const head = targets.map((t) => `<th>${t}</th>`).join('');
  const body = rows.map((row) => {
    const cells = targets.map((t) => {
      const c = row.targets[t];
      return `<td>${c ? `${bar(c, 140, 12)} <span class="mini">${OUTCOMES.map((o) => c[o]).join('/')}</span>` : ''}</td>`;
    }).join('');
    return `<tr><th scope="row">${esc(row.key)}</th><td class="num">${row.images}</td>${cells}</tr>`;
  }).join('');
  return `<h3>${title}</h3><table class="breakdown" data-dimension="${dim}"><thead><tr><th>${title.toLowerCase()}</th><th>images</th>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function verifySection(r: Report): string {
  const v = r.verify;
  if (v.booted + v.failed + v.notVerifiable === 0) return '<section id="verify"><h2>Boot verification</h2><p>No output was booted (run with --verify).</p></section>';
  const login = v.loginSeconds ? ` Time to login: median ${v.loginSeconds.median} s, at most ${v.loginSeconds.max} s.` : '';
  return `<section id="verify"><h2>Boot verification</h2><p><span class="count" data-verify="booted">${v.booted}</span> booted, <span class="count" data-verify="failed">${v.failed}</span> did not, ${v.notVerifiable} could not be verified.${login}</p>${ranked('Failure classes', v.classes, 'verify')}</section>`;
}

function imagesSection(r: Report): string {
  const head = ['id', 'status', 'distribution', 'kernel', 'AKI', 'class', 'arch', 'seconds', ...r.targets].map((h, i) => `<th data-col="${i}" tabindex="0">${h}</th>`).join('');
  const rows = r.images.map((img) => {
    const cells = [
      `<td><a href="${esc(img.record)}">${esc(img.id)}</a></td>`,
      `<td>${img.status}</td>`,
      `<td>${esc(img.distro)}</td>`,
      `<td>${esc(img.kernel)}</td>`,
      `<td>${esc(img.aki)}</td>`,
      `<td>${esc(img.class)}</td>`,
      `<td>${esc(img.arch)}</td>`,
      `<td class="num">${img.seconds}</td>`,
      ...r.targets.map((t) => {
        const x = img.targets[t];
        if (!x) return '<td></td>';
        const out = x.output ? ` <a href="${esc(x.output)}">output</a>` : '';
        const ver = x.verify ? ` <span class="verify">${esc(x.verify)}</span>` : '';
        const reg = x.register ? `<details class="register"><summary>register</summary><pre>${esc(x.register.join('\n'))}</pre></details>` : '';
        return `<td class="outcome ${x.outcome}" data-outcome="${x.outcome}" title="${esc(x.why)}">${swatch(x.outcome)}${LABELS[x.outcome].text}${out}${ver}<div class="why">${esc(x.why)}</div>${reg}</td>`;
      }),
    ];
    return `<tr data-id="${esc(img.id)}" data-status="${img.status}">${cells.join('')}</tr>`;
  }).join('\n');
  return `<section id="images"><h2>Every image</h2><p><label>Filter: <input id="filter" type="search" placeholder="id, distribution, kernel, outcome (wont, tweaks...)"></label> <span id="shown">${r.images.length}</span> of ${r.images.length} shown. Click a column to sort.</p><table id="image-table"><thead><tr>${head}</tr></thead><tbody>\n${rows}\n</tbody></table></section>`;
}

/** A horizontal stacked bar of the four outcomes, as inline SVG. */
function bar(c: OutcomeCounts, width: number, height: number): string {
  const total = OUTCOMES.reduce((s, o) => s + c[o], 0);
  let x = 0;
  const rects = OUTCOMES.map((o) => {
    const w = total ? (c[o] / total) * width : 0;
    const rect = w > 0 ? `<rect x="${x.toFixed(2)}" y="0" width="${w.toFixed(2)}" height="${height}" fill="${LABELS[o].colour}"><title>${LABELS[o].text}: ${c[o]}</title></rect>` : '';
    x += w;
    return rect;
  }).join('');
  return `<svg class="bar" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${OUTCOMES.map((o) => `${LABELS[o].text} ${c[o]}`).join(', ')}"><rect width="${width}" height="${height}" fill="#eee"/>${rects}</svg>`;
}

function swatch(o: Outcome): string {
  return `<svg class="sw" width="10" height="10" aria-hidden="true"><rect width="10" height="10" fill="${LABELS[o].colour}"/></svg>`;
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{margin:0 0 .2em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.4em 0}th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
td.num{text-align:right}.meta{color:#555}.sw{margin-right:4px}.mini{color:#666;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1em}
.ranked .n{display:inline-block;min-width:2.5em;font-weight:bold}
#image-table th{cursor:pointer;background:#f5f5f5;position:sticky;top:0}
td.outcome .why{color:#666;font-size:12px;max-width:28em}
td.outcome details.register pre{font-size:11px;white-space:pre-wrap;max-width:40em}
tr.hidden{display:none}.verify{color:#1565c0}
`;

/** Sorting and filtering; `#q=text` in the address filters on load (a link can carry a filter). */
const SCRIPT = `
(function(){
var table=document.getElementById('image-table'),body=table.tBodies[0],input=document.getElementById('filter'),shown=document.getElementById('shown');
function apply(){var q=input.value.trim().toLowerCase(),n=0;
for(var i=0;i<body.rows.length;i++){var r=body.rows[i],hit=!q||r.textContent.toLowerCase().indexOf(q)>=0||(' '+Array.prototype.map.call(r.querySelectorAll('[data-outcome]'),function(c){return c.getAttribute('data-outcome')}).join(' ')+' ').indexOf(' '+q+' ')>=0;
r.classList.toggle('hidden',!hit);if(hit)n++}shown.textContent=String(n)}
input.addEventListener('input',apply);
var dir={};
Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,col){th.addEventListener('click',function(){
var rows=Array.prototype.slice.call(body.rows),d=dir[col]=-(dir[col]||-1);
rows.sort(function(a,b){var x=a.cells[col].textContent,y=b.cells[col].textContent,nx=parseFloat(x),ny=parseFloat(y);
return d*(isNaN(nx)||isNaN(ny)?x.localeCompare(y):nx-ny)});rows.forEach(function(r){body.appendChild(r)})})});
var m=/[#&]q=([^&]*)/.exec(location.hash);if(m){input.value=decodeURIComponent(m[1]);}
apply();document.body.setAttribute('data-ready','yes');
})();
`;
