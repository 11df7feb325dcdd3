// The Resources page clicked through in Chromium (test/browser/support.ts): against a portal with two
// sites made over the API, an admin creates a DNS resource with a wildcard, an address description and
// port filters, a CIDR range whose host bits the API masks (its notice shown), an IP address and the
// Internet resource; sees them listed; is refused a CIDR range with an impossible length and one inside
// the reserved tunnel range, each time the API's own message beside the address field and nothing
// created; edits the DNS resource (wildcard, sites, filters) and is refused a port out of range beside
// the ports field; and deletes it after confirming in the page. Screenshots: resources,
// resource-refused, resource-edit.

import { expect, it } from "vitest";
import { browserSuite, loadPlaywright, type BrowserContext, errorBeside } from "./support.js";

const playwright = await loadPlaywright();

interface Resource {
  id: string;
  type: string;
  name: string;
  address: string | null;
  address_description: string | null;
  filters: { protocol: string; ports?: string[] }[];
  site_ids: string[];
}
interface Problem {
  errors?: { field: string; code: string; message: string }[];
}

browserSuite("the Resources page in Chromium", playwright, (lab) => {

  /** The API with the browser's session, as the page calls it. */
  const apiOf = (context: BrowserContext) => {
    const csrf = async () => decodeURIComponent((await context.cookies()).find((c) => c.name === "wardline_csrf")?.value ?? "");
    return {
      post: async (path: string, data: unknown) => context.request.post(`${lab().portal.url}${path}`, { data, headers: { "X-CSRF-Token": await csrf() } }),
      resources: async () => ((await (await context.request.get(`${lab().portal.url}/api/resources`)).json()) as { data: Resource[] }).data,
      get: (path: string) => context.request.get(`${lab().portal.url}${path}`),
    };
  };


  it("creates every type of resource, refuses bad addresses with the API's message, edits and deletes", async () => {
    const { context, page, errors } = await lab().signedIn();
    const api = apiOf(context);
    const hq = (await (await api.post("/api/sites", { name: "Headquarters" })).json()) as { id: string };
    const lab2 = (await (await api.post("/api/sites", { name: "Lab" })).json()) as { id: string };
    const list = `${lab().portal.url}/${lab().slug}/resources`;

    await page.goto(list);
    await page.getByRole("heading", { name: "Resources", exact: true }).waitFor();
    expect(await page.getByText("No resources yet").count()).toBe(1);
    const form = page.getByRole("form", { name: "New resource" });

    // A DNS wildcard with a description, one site and tcp ports (given unsorted: the API sorts them).
    await form.getByLabel("Type").selectOption("dns");
    await form.getByLabel("Name", { exact: true }).fill("Corp intranet");
    await form.getByLabel("Address", { exact: true }).fill("*.corp.example");
    await form.getByLabel("Address description").fill("https://intranet.corp.example");
    await form.getByLabel("Headquarters", { exact: true }).check();
    await form.getByLabel("TCP", { exact: true }).check();
    await form.getByLabel("TCP ports").fill("8000-8080, 443");
    await form.getByRole("button", { name: "Create resource" }).click();
    await page.getByRole("heading", { name: "Corp intranet" }).waitFor();
    const dnsId = page.url().split("/").pop()!;
    const dns = (await (await api.get(`/api/resources/${dnsId}`)).json()) as Resource;
    expect(dns).toMatchObject({
      type: "dns",
      name: "Corp intranet",
      address: "*.corp.example",
      address_description: "https://intranet.corp.example",
      filters: [{ protocol: "tcp", ports: ["443", "8000-8080"] }],
      site_ids: [hq.id],
    });
    const summary = page.getByTestId("resource-summary");
    const summaryRow = async (label: string) => summary.getByRole("row").filter({ has: page.getByRole("rowheader", { name: label, exact: true }) }).locator("td").textContent();
    expect(await summaryRow("Address")).toBe("*.corp.example");
    expect(await summaryRow("Address description")).toBe("https://intranet.corp.example");
    expect(await summaryRow("Sites")).toBe("Headquarters");
    expect(await summaryRow("Traffic")).toBe("TCP 443, 8000-8080");

    // A CIDR range with host bits set: stored as its network, and the page says so in the API's words.
    await page.goto(list);
    await form.getByLabel("Type").selectOption("cidr");
    await form.getByLabel("Name", { exact: true }).fill("Office LAN");
    await form.getByLabel("Address", { exact: true }).fill("10.20.0.7/16");
    await form.getByLabel("Lab", { exact: true }).check();
    await form.getByLabel("UDP", { exact: true }).check();
    await form.getByLabel("ICMP", { exact: true }).check();
    await form.getByRole("button", { name: "Create resource" }).click();
    await page.getByRole("heading", { name: "Office LAN" }).waitFor();
    expect(await page.getByTestId("resource-notices").textContent()).toBe('"10.20.0.7/16" has host bits set; stored as its network, 10.20.0.0/16');
    expect(await summaryRow("Address")).toBe("10.20.0.0/16");
    expect(await summaryRow("Traffic")).toBe("UDP all ports · ICMP");

    // An IP address, then the Internet resource, which has no address field and no filters.
    await page.goto(list);
    await form.getByLabel("Type").selectOption("ip");
    await form.getByLabel("Name", { exact: true }).fill("Build server");
    await form.getByLabel("Address", { exact: true }).fill("192.168.7.10");
    await form.getByLabel("Lab", { exact: true }).check();
    await form.getByRole("button", { name: "Create resource" }).click();
    await page.getByRole("heading", { name: "Build server" }).waitFor();
    await page.goto(list);
    await form.getByLabel("Type").selectOption("internet");
    expect(await form.getByLabel("Address", { exact: true }).count()).toBe(0);
    expect(await form.getByLabel("TCP", { exact: true }).count()).toBe(0);
    await form.getByLabel("Name", { exact: true }).fill("Internet");
    await form.getByRole("button", { name: "Create resource" }).click();
    await page.getByRole("heading", { name: "Internet" }).waitFor();

    // All four listed, with their addresses, sites and traffic.
    await page.goto(list);
    const row = (name: string) => page.getByRole("row").filter({ has: page.getByRole("link", { name, exact: true }) });
    expect(await row("Corp intranet").textContent()).toContain("*.corp.example");
    expect(await row("Corp intranet").textContent()).toContain("Headquarters");
    expect(await row("Corp intranet").textContent()).toContain("TCP 443, 8000-8080");
    expect(await row("Office LAN").textContent()).toContain("UDP all ports · ICMP");
    expect(await row("Build server").textContent()).toContain("192.168.7.10");
    expect(await row("Internet").textContent()).toContain("All traffic");
    expect(await api.resources()).toHaveLength(4);
    await lab().shot(page, "resources");

    // Refused: a /33 and a range inside the reserved tunnel range. Each time the field shows what the
    // API answers to the same request, and nothing is created.
    for (const address of ["10.0.0.0/33", "100.64.0.0/11"]) {
      await form.getByLabel("Type").selectOption("cidr");
      await form.getByLabel("Name", { exact: true }).fill("Refused");
      const addressInput = form.getByLabel("Address", { exact: true });
      await addressInput.fill(address);
      await form.getByLabel("Headquarters", { exact: true }).check();
      await form.getByRole("button", { name: "Create resource" }).click();
      const shown = await errorBeside(page, addressInput);
      const answer = await api.post("/api/resources", { type: "cidr", name: "Refused", address, address_description: "", site_ids: [hq.id], filters: [] });
      expect(answer.status()).toBe(422);
      const said = ((await answer.json()) as Problem).errors?.find((e) => e.field === "address")?.message;
      expect(said).toBeTruthy();
      expect(shown).toBe(said);
      expect(page.url()).toBe(list);
      expect(await api.resources()).toHaveLength(4);
    }
    await lab().shot(page, "resource-refused");

    // Edit the DNS resource: any depth of subdomain, both sites, udp 53 too. A port out of range first:
    // its message lands beside the ports input it came from (filters/0/ports/1 in the API's answer).
    await page.goto(`${list}/${dnsId}`);
    const edit = page.getByRole("form", { name: "Edit resource" });
    expect(await edit.getByLabel("Address", { exact: true }).inputValue()).toBe("*.corp.example");
    await edit.getByLabel("Address", { exact: true }).fill("**.corp.example");
    await edit.getByLabel("Lab", { exact: true }).check();
    await edit.getByLabel("TCP ports").fill("443, 70000");
    await edit.getByRole("button", { name: "Save changes" }).click();
    const portsInput = edit.getByLabel("TCP ports");
    const shownPort = await errorBeside(page, portsInput);
    const portAnswer = await context.request.patch(`${lab().portal.url}/api/resources/${dnsId}`, {
      data: { filters: [{ protocol: "tcp", ports: ["443", "70000"] }] },
      headers: { "X-CSRF-Token": decodeURIComponent((await context.cookies()).find((c) => c.name === "wardline_csrf")?.value ?? "") },
    });
    expect(portAnswer.status()).toBe(422);
    const portProblem = ((await portAnswer.json()) as Problem).errors?.find((e) => e.field === "filters/0/ports/1");
    expect(shownPort).toBe(portProblem?.message);
    expect(((await (await api.get(`/api/resources/${dnsId}`)).json()) as Resource).address, "nothing changed").toBe("*.corp.example");

    await portsInput.fill("443");
    await edit.getByLabel("UDP", { exact: true }).check();
    await edit.getByLabel("UDP ports").fill("53");
    await edit.getByLabel("Name", { exact: true }).fill("Corp everything");
    await edit.getByRole("button", { name: "Save changes" }).click();
    await page.getByRole("heading", { name: "Corp everything" }).waitFor();
    expect(await portsInput.getAttribute("aria-invalid")).toBeNull();
    const edited = (await (await api.get(`/api/resources/${dnsId}`)).json()) as Resource;
    expect(edited).toMatchObject({
      name: "Corp everything",
      address: "**.corp.example",
      filters: [{ protocol: "tcp", ports: ["443"] }, { protocol: "udp", ports: ["53"] }],
      site_ids: [hq.id, lab2.id].sort(),
    });
    expect(await summaryRow("Address")).toBe("**.corp.example");
    expect(await summaryRow("Sites")).toBe("Headquarters, Lab");
    expect(await summaryRow("Traffic")).toBe("TCP 443 · UDP 53");
    expect(await summary.textContent()).not.toContain("[object");
    await page.getByRole("heading", { name: "Corp everything" }).scrollIntoViewIfNeeded();
    await lab().shot(page, "resource-edit");

    // Delete: the first click only asks; cancel keeps it; confirming deletes it and goes back to the list.
    await page.getByRole("button", { name: "Delete resource" }).click();
    await page.getByRole("button", { name: "Cancel" }).click();
    expect((await api.get(`/api/resources/${dnsId}`)).status()).toBe(200);
    await page.getByRole("button", { name: "Delete resource" }).click();
    await page.getByRole("button", { name: "Delete Corp everything" }).click();
    await page.waitForURL(list);
    await page.getByRole("heading", { name: "Resources", exact: true }).waitFor();
    expect(await page.getByRole("link", { name: "Corp everything" }).count()).toBe(0);
    expect((await api.get(`/api/resources/${dnsId}`)).status()).toBe(404);
    expect(await api.resources()).toHaveLength(3);
    expect(errors).toEqual([]);
    await context.close();
  }, 120_000);
});
