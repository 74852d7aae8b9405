/**
 * @module bench/report
 * Re-renders the Markdown report (and the SVG chart) of a finished run from its JSON, e.g.
 * after changing how the report is laid out: `node bench/report.ts [bench/results/latest.json]`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHART_TITLE, renderChart } from './lib/chart.ts';
import { RESULTS } from './lib/env.ts';
import { renderReport } from './lib/report.ts';
import type { BenchResults } from './lib/results.ts';

const path = process.argv[2] ?? join(RESULTS, 'latest.json');
const results = JSON.parse(readFileSync(path, 'utf8')) as BenchResults;
const http = results.points.filter((p) => p.group === 'http');
if (http.length > 0) {
  writeFileSync(path.replace(/\.json$/, '.svg'), renderChart(http, CHART_TITLE));
}
process.stdout.write(renderReport(results));
