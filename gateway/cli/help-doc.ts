/**
 * The help texts read as data, for the man page and the shell completion: they are made from
 * what `--help` prints, so the three never disagree. The layout the texts follow is described
 * in usage.ts; parseHelp throws on a line it cannot place, so a text that drifts from it
 * fails the tests rather than silently dropping out of the man page.
 */

export interface OptionDoc {
  readonly short?: string;
  readonly long: string;
  /** The argument's name (FILE, DIR, FORMAT…), if the option takes one. */
  readonly arg?: string;
  readonly text: string;
}

export interface ItemDoc {
  readonly term: string;
  readonly text: string;
}

/** A titled block ("Commands:", "Exit status: …"): prose paragraphs, term/text items, or both. */
export interface SectionDoc {
  readonly title: string;
  readonly paragraphs: readonly string[];
  readonly items: readonly ItemDoc[];
}

/** The text after the usage, in order: prose paragraphs and sections ("Options" included). */
export type BlockDoc = { readonly kind: 'text'; readonly text: string } | ({ readonly kind: 'section' } & SectionDoc);

export interface CommandDoc {
  /** '' for blockgate itself, else 'serve', 'image import'… */
  readonly path: string;
  /** The text before the Usage line (blockgate itself: its one-line description). */
  readonly title: string;
  /** Usage lines without "Usage:", continuation lines joined. */
  readonly usage: readonly string[];
  readonly blocks: readonly BlockDoc[];
  /** The items of the Options section, read as options. */
  readonly options: readonly OptionDoc[];
}

const SECTION = /^([A-Z][A-Za-z ]*):(?:\s+(.*))?$/;
const OPTION_TERM = /^(?:-(\w), )?--([\w-]+)(?: (\S+))?$/;

export function parseHelp(path: string, text: string): CommandDoc {
  const lines = text.replace(/\n+$/, '').split('\n');
  let i = 0;
  const title: string[] = [];
  while (i < lines.length && !lines[i]!.startsWith('Usage:')) title.push(lines[i++]!.trim());
  if (i === lines.length) throw new Error(`help of "${path}": no Usage line`);

  const usage: string[] = [];
  const first = lines[i++]!.slice('Usage:'.length).trim();
  if (first !== '') usage.push(first);
  for (; i < lines.length && /^\s+\S/.test(lines[i]!); i++) {
    const line = lines[i]!.trim();
    // An indented line naming the program again is another form; anything else wraps the last.
    if (line.startsWith('blockgate') || usage.length === 0) usage.push(line);
    else usage[usage.length - 1] += ` ${line}`;
  }

  const blocks: Array<{ kind: 'text'; text: string } | { kind: 'section'; title: string; paragraphs: string[]; items: ItemDoc[] }> = [];
  let section: { kind: 'section'; title: string; paragraphs: string[]; items: ItemDoc[] } | undefined;
  let prose: string[] = [];
  const endProse = (): void => {
    if (prose.length > 0) {
      if (section) section.paragraphs.push(prose.join(' '));
      else blocks.push({ kind: 'text', text: prose.join(' ') });
    }
    prose = [];
  };
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') {
      endProse();
      // A blank line ends an item list; prose after it is the document's again.
      if (section && section.items.length > 0) section = undefined;
      continue;
    }
    const heading = SECTION.exec(line);
    if (heading && !line.startsWith(' ')) {
      endProse();
      section = { kind: 'section', title: heading[1]!, paragraphs: [], items: [] };
      blocks.push(section);
      if (heading[2]) prose.push(heading[2]);
      continue;
    }
    const indent = line.length - line.trimStart().length;
    if (section && indent > 0 && prose.length === 0) {
      const item = /^\s+(\S(?:\S| (?! ))*)(?:\s{2,}(.*))?$/.exec(line)!;
      const last = section.items[section.items.length - 1];
      const isTerm = indent <= 2 || (section.title === 'Options' && item[1]!.startsWith('-'));
      if (!isTerm) {
        if (!last) throw new Error(`help of "${path}": indented line outside an item: ${line.trim()}`);
        section.items[section.items.length - 1] = { term: last.term, text: `${last.text} ${line.trim()}`.trim() };
      } else section.items.push({ term: item[1]!, text: item[2] ?? '' });
      continue;
    }
    prose.push(line.trim());
  }
  endProse();

  const options: OptionDoc[] = [];
  for (const b of blocks) {
    if (b.kind !== 'section' || b.title !== 'Options') continue;
    for (const item of b.items) {
      const m = OPTION_TERM.exec(item.term);
      if (!m) throw new Error(`help of "${path}": cannot read option ${JSON.stringify(item.term)}`);
      options.push({ ...(m[1] && { short: m[1] }), long: m[2]!, ...(m[3] && { arg: m[3] }), text: item.text });
    }
  }
  return {
    path,
    title: title.filter((l) => l !== '').join(' '),
    usage,
    blocks,
    options,
  };
}

/** The words that complete an option's argument when its text starts with a list: "raw, qcow2 or vmdk …". */
export function optionValues(o: OptionDoc): string[] {
  const m = /^((?:[a-z0-9][\w-]*, )+[a-z0-9][\w-]* or [a-z0-9][\w-]*)\b/.exec(o.text);
  return m ? m[1]!.split(/, | or /) : [];
}

/** Positional arguments of a command from its first usage line: `FILE`, `EXPORT`, or literal words such as `bash`. */
export function positionals(doc: CommandDoc, line = doc.usage[0] ?? ''): string[] {
  const words = line.replace(/\[[^\]]*\]/g, ' ').split(/\s+/).filter(Boolean);
  const after = words.slice(1 + (doc.path === '' ? 0 : doc.path.split(' ').length));
  return after.filter((w) => /^[A-Z][A-Z_]*$/.test(w) || /^[a-z][a-z-]*$/.test(w));
}
