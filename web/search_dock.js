// Where the search view lives. The modern frontend (comfyui-frontend-package) has a sidebar tab API on
// app.extensionManager: the view is a sidebar tab there. The 2024 UI (and a frontend without that API) gets the
// floating panel and its toggle button at the bottom centre. This module holds that difference and imports nothing,
// so its decisions can be tested with stand-ins for `app`.

export const TAB_ID = "diffusion-search";

/**
 * The frontend's sidebar tab API as {register, activeId, toggle, subscribe}, or null where there is none (or the
 * new menu is off; the host is chosen at page load).
 * registerSidebarTab sits on app.extensionManager.sidebarTab (1.x today) or on app.extensionManager (older,
 * deprecated since); the active tab id and its changes come from the sidebar store where it is one (pinia).
 */
export function sidebarTabApi(app) {
  const manager = app && typeof app === "object" ? app.extensionManager : null;
  if (!manager || typeof manager !== "object") return null;
  // With the new menu off, the frontend draws no sidebar panel (GraphCanvas.vue): a tab would never show.
  const setting = manager.setting && typeof manager.setting.get === "function" ? manager.setting : null;
  if (setting && setting.get("Comfy.UseNewMenu") === "Disabled") return null;
  const store = manager.sidebarTab && typeof manager.sidebarTab.registerSidebarTab === "function" ? manager.sidebarTab : null;
  const register = store ? (tab) => store.registerSidebarTab(tab)
    : typeof manager.registerSidebarTab === "function" ? (tab) => manager.registerSidebarTab(tab) : null;
  if (!register) return null;
  const command = manager.command && typeof manager.command.execute === "function" ? manager.command : null;
  return {
    register,
    activeId: () => (store && "activeSidebarTabId" in store ? store.activeSidebarTabId ?? null : undefined),
    toggle: (id) => {
      if (store && typeof store.toggleSidebarTab === "function") store.toggleSidebarTab(id);
      else if (command) command.execute(`Workspace.ToggleSidebarTab.${id}`);
    },
    subscribe: (fn) => (store && typeof store.$subscribe === "function" ? (store.$subscribe(fn), true) : false),
  };
}

/**
 * Whether a search's start opens the view: never after the user closed it (until they open it again); in the
 * sidebar, only when no other tab is in use (a run does not take the node library away from someone using it).
 * `activeTab` is the active sidebar tab id (null: the sidebar is closed; undefined: no sidebar).
 */
export function opensOnStart(userHidden, activeTab) {
  if (userHidden) return false;
  return activeTab === undefined || activeTab === null || activeTab === TAB_ID;
}

/** The floating panel (2024 UI): shown and hidden in place; the bottom button toggles it. */
export class FloatingHost {
  constructor(panel) {
    this.kind = "floating";
    this.panel = panel;
    const button = document.createElement("button");
    button.className = "dsv-toggle";
    button.textContent = "Search view";
    button.type = "button";
    button.id = "diffusion-search-toggle";
    button.title = "Show or hide the diffusion search view";
    button.addEventListener("click", () => {
      panel.toggle();
      panel.userHidden = panel.root.hidden;
    });
    document.body.appendChild(button);
  }

  activeTab() { return undefined; }
  open() { this.panel.root.hidden = false; }
  close() { this.panel.root.hidden = true; }
}

/**
 * The sidebar tab (modern frontend). The frontend calls render(el) when the tab opens and destroy() when the
 * sidebar closes; switching to another tab calls neither, so the store's active id is watched too. When the tab is
 * not shown, the panel's root waits in a hidden parking element: the same root, store and controls come back.
 */
export class SidebarHost {
  constructor(panel, api) {
    this.kind = "sidebar";
    this.panel = panel;
    this.api = api;
    this.closing = false;
    this.parking = document.createElement("div");
    this.parking.id = "diffusion-search-parking";
    this.parking.style.display = "none";
    document.body.appendChild(this.parking);
    this.park();
    panel.root.classList.add("dsv-docked");
    this.lastActive = api.activeId();
    api.register({
      id: TAB_ID, icon: "pi pi-chart-line", title: "Search view", label: "Search",
      tooltip: "Diffusion search view", type: "custom",
      render: (el) => this.mount(el),
      destroy: () => this.left(null),
    });
    api.subscribe(() => {
      const active = api.activeId();
      if (active !== TAB_ID && this.lastActive === TAB_ID) this.left(active);
      this.lastActive = active;
    });
  }

  mount(el) {
    if (this.panel.root.parentNode !== el) el.appendChild(this.panel.root);
    el.classList.add("dsv-tab");
    this.panel.root.hidden = false;
    this.panel.scheduleDraw();
  }

  /** The tab was closed (`next` null) or another one took its place: the root goes back to the parking element. */
  left(next) {
    if (this.panel.root.parentNode === this.parking) return;
    this.park();
    if (next === null && !this.closing) this.panel.userHidden = true;   // the user closed the sidebar tab
  }

  park() {
    this.panel.root.hidden = true;
    this.panel.hoverCard.hidden = true;
    this.parking.appendChild(this.panel.root);
  }

  activeTab() { return this.api.activeId(); }

  /** Whether the tab is the active one (a frontend that does not tell: whether the root is out of the parking). */
  shown() {
    const active = this.api.activeId();
    return active === undefined ? this.panel.root.parentNode !== this.parking : active === TAB_ID;
  }

  open() { if (!this.shown()) this.api.toggle(TAB_ID); }

  close() {
    this.closing = true;
    try {
      if (this.shown()) this.api.toggle(TAB_ID);
      this.left(null);
    } finally {
      this.closing = false;
    }
  }
}

/** The host this frontend offers for the panel. */
export function createHost(panel, app) {
  const api = sidebarTabApi(app);
  return api ? new SidebarHost(panel, api) : new FloatingHost(panel);
}
