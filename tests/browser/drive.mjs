// Drives the example web app in headless Chromium, as a visitor would:
// log in through the form, fill the cart past the cookie budget with
// <lines> lines whose notes are <note length> characters of random text
// (which does not compress), log out. Checks what Chromium itself stored
// and sent, and that it refused no cookie.
// Usage: node drive.mjs <chromium> <app base URL> <cookie name> <lines> <note length>
// Prints one line per step; exits 1 at the first failed check.
import { chromium } from 'playwright-core';
import { randomBytes } from 'node:crypto';

const [executablePath, base, NAME, lines, noteLength] = process.argv.slice(2);
if (!executablePath || !base || !NAME || !(Number(lines) > 0) || !(Number(noteLength) > 0)) {
  console.error('usage: node drive.mjs <chromium> <app base URL> <cookie name> <lines> <note length>');
  process.exit(2);
}

function check(condition, what) {
  if (!condition) throw new Error(`failed: ${what}`);
}

// Playwright's own waits time out after 30 s each; this bounds the whole run.
setTimeout(() => {
  console.error('failed: the run took over 120 s');
  process.exit(1);
}, 120_000).unref();

// Submits a form by clicking `button` and waits for the POST's answer: a
// redirect (303), the app's answer to a valid form.
async function submit(page, path, button) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === path),
    page.click(button),
  ]);
  check(response.status() === 303, `POST ${path} answered ${response.status()}, not 303`);
  await page.waitForLoadState();
}

const browser = await chromium.launch({
  executablePath,
  // Flags for a closed network and a root user (no sandbox).
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  // Cookies Chromium refused to store, with its reasons.
  const refused = [];
  cdp.on('Network.responseReceivedExtraInfo', (event) => {
    for (const cookie of event.blockedCookies || []) refused.push(cookie.blockedReasons.join(','));
  });
  const sessionCookie = async () => (await context.cookies()).find((c) => c.name === NAME);
  const nav = async () => page.locator('nav').innerText();

  await page.goto(`${base}/login`);
  await page.fill('input[name=username]', 'alice');
  await page.fill('input[name=password]', 'demo');
  await submit(page, '/login', 'form[action="/login"] button');
  await page.waitForURL(`${base}/`);
  let cookie = await sessionCookie();
  check(cookie, 'a session cookie stored after login');
  check(cookie.secure && cookie.httpOnly && cookie.sameSite === 'Lax' && cookie.path === '/',
    `Secure, HttpOnly, SameSite=Lax, Path=/ (got ${JSON.stringify(cookie)})`);
  check(cookie.expires > Date.now() / 1000, 'a persistent cookie');
  check((await nav()).includes('Signed in as alice'), 'signed in after the redirect');
  console.log(`login: ${NAME} stored (${NAME.length + cookie.value.length} bytes of name and value), signed in`);

  for (let line = 1; line <= Number(lines); line++) {
    await page.goto(`${base}/cart`);
    await page.fill('input[name=sku]', `SKU-${line}`);
    await page.fill('textarea[name=note]', randomBytes(Number(noteLength)).toString('base64url').slice(0, Number(noteLength)));
    await submit(page, '/cart/add', 'form[action="/cart/add"] button');
    check(refused.length === 0, `no cookie refused up to cart line ${line} (Chromium: ${refused.join('; ')})`);
  }
  await page.goto(`${base}/session`);
  const dropped = await page.locator('li.dropped').count();
  const sent = Number(await page.locator('#cookie-len').innerText());
  cookie = await sessionCookie();
  check(dropped > 0, 'cart lines dropped to fit the budget');
  check(sent === cookie.value.length, `the app read the cookie Chromium holds (${sent} vs ${cookie.value.length} bytes)`);
  check(NAME.length + cookie.value.length <= 4096, 'name and value within 4096 bytes');
  check((await nav()).includes('Signed in as alice'), 'still signed in with a full cart');
  console.log(`cart: ${dropped} line(s) dropped, ${NAME.length + cookie.value.length} bytes of name and value kept and sent, still signed in`);

  await submit(page, '/logout', 'nav form[action="/logout"] button');
  await page.waitForURL(`${base}/`);
  check(!(await sessionCookie()), 'the cookie deleted at logout');
  check((await nav()).includes('Not signed in'), 'signed out');
  console.log('logout: cookie deleted, signed out');

  // One more round trip, so that the logout's cookie events have come in.
  await page.goto(`${base}/session`);
  check(refused.length === 0, `no cookie refused (Chromium: ${refused.join('; ')})`);
  console.log('no cookie refused');
} finally {
  await browser.close();
}
