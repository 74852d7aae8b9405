import assert from 'node:assert/strict';
import { it } from 'node:test';
import { rankTools } from '../src/virtual/tool-search.ts';

// A hostile query (120k distinct words) and a hostile member description (16 KB) must not block
// the event loop: the query and each tool's text are ranked only up to a bounded size.
it('rankTools stays fast for a huge query against a huge description', () => {
  const tools = [
    { name: 'member__big', description: 'q'.repeat(16_384) },
    ...Array.from({ length: 20 }, (_, i) => ({
      name: `member__tool_number_${i}`,
      description: 'Does an ordinary thing with ordinary inputs and returns an ordinary result. '.repeat(4),
    })),
  ];
  const query = Array.from({ length: 120_000 }, (_, i) => `q${i.toString(36)}z`).join(' ');
  const started = performance.now();
  rankTools(tools, query, 10);
  const took = performance.now() - started;
  assert.ok(took < 250, `rankTools took ${Math.round(took)} ms`);
});

it('rankTools still finds a word near the start of the query', () => {
  const tools = [{ name: 'gh__create_issue', description: 'Creates an issue' }];
  const found = rankTools(tools, 'create issue', 5);
  assert.equal(found.length, 1);
});
