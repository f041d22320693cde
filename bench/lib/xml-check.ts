/**
 * A small well-formedness check for the XML we write ourselves (SVG charts):
 * one root element, properly nested and closed tags, quoted and unique
 * attributes, only known entities. Not a general XML parser: no DTDs, no
 * CDATA, no processing instructions other than a leading XML declaration.
 */

const namePattern = /^[A-Za-z_][\w.:-]*/;
const attributePattern = /^\s+([A-Za-z_][\w.:-]*)\s*=\s*"([^"<]*)"/;
const entityPattern = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/;
/** Bounds the scan: our charts are a few hundred elements. */
const tagsMax = 100_000;

function checkEntities(text: string, where: string): string | null {
  return entityPattern.test(text) ? `bare '&' in ${where}` : null;
}

/** Checks `<name attr="v" ...>` (without the angle brackets); returns an error or null. */
function checkOpenTag(body: string): { name: string; error: string | null } {
  const nameMatch = namePattern.exec(body);
  if (!nameMatch) return { name: '', error: `bad tag <${body.slice(0, 40)}>` };
  const name = nameMatch[0];
  let rest = body.slice(name.length);
  const seen = new Set<string>();
  for (let i = 0; i < 1_000; i++) {
    const match = attributePattern.exec(rest);
    if (!match) break;
    const all = match[0];
    const attribute = match[1]!;
    const value = match[2]!;
    if (seen.has(attribute))
      return { name, error: `duplicate attribute ${attribute} in <${name}>` };
    seen.add(attribute);
    const entityError = checkEntities(value, `attribute ${attribute} of <${name}>`);
    if (entityError) return { name, error: entityError };
    rest = rest.slice(all.length);
  }
  if (rest.trim() !== '')
    return { name, error: `bad attributes in <${name}>: ${rest.slice(0, 40)}` };
  return { name, error: null };
}

/** Returns null if `xml` is well-formed, or a message naming the first problem. */
export function findXmlProblem(xml: string): string | null {
  let position = 0;
  const declaration = /^<\?xml[^?]*\?>/.exec(xml);
  if (declaration) position = declaration[0].length;
  const stack: string[] = [];
  let rootsSeen = 0;
  let scanned = false;
  for (let tags = 0; tags < tagsMax; tags++) {
    const open = xml.indexOf('<', position);
    const text = xml.slice(position, open === -1 ? xml.length : open);
    if (stack.length === 0 && text.trim() !== '') return 'text outside the root element';
    const entityError = checkEntities(text, 'text');
    if (entityError) return entityError;
    if (open === -1) {
      scanned = true;
      break;
    }
    if (xml.startsWith('<!--', open)) {
      const end = xml.indexOf('-->', open + 4);
      if (end === -1) return 'unclosed comment';
      position = end + 3;
      continue;
    }
    const close = xml.indexOf('>', open);
    if (close === -1) return 'unclosed tag';
    const body = xml.slice(open + 1, close);
    position = close + 1;
    if (body.startsWith('/')) {
      const name = body.slice(1).trim();
      const expected = stack.pop();
      if (name !== expected) return `</${name}> closes <${expected ?? 'nothing'}>`;
      continue;
    }
    const selfClosing = body.endsWith('/');
    const tag = checkOpenTag(selfClosing ? body.slice(0, -1) : body);
    if (tag.error) return tag.error;
    if (stack.length === 0) rootsSeen++;
    if (rootsSeen > 1) return 'more than one root element';
    if (!selfClosing) stack.push(tag.name);
  }
  if (!scanned) return `more than ${tagsMax} tags`;
  if (stack.length > 0) return `unclosed <${stack.at(-1)}>`;
  if (rootsSeen !== 1) return 'no root element';
  return null;
}
