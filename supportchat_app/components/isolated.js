// A box the layout does not see (display: contents) whose children are rendered by this component's own render
// (components/isolated.py): a change inside it re-renders only it, not the page around it; and a render of the
// page around it reuses what it drew last time unless something inside it changed.
//
// Why the reuse is needed: NiceGUI hands every component its children as fresh slot functions, so Vue updates a
// child component whenever its parent renders. The children's vnodes are therefore kept in a `computed` that
// depends on exactly what they read (the elements below, and this element, whose child list is read by the
// parent's slot); while nothing of that changed, the same vnodes are returned and marked as Vue's `v-memo` marks
// its cached vnodes, which makes Vue's patch skip them (`n1 === n2`) instead of walking every bubble again.
import { computed, getCurrentInstance, h } from "vue";

export default {
  setup(_props, { slots, attrs }) {
    const own = String(attrs.id || "").slice(1); // NiceGUI's element id ("c123")
    const elements = getCurrentInstance().root.proxy.elements; // NiceGUI's app's elements (reactive)
    const children = computed(() => {
      void elements[own]; // this element's own child list changed: the parent's slot has the new one
      const drawn = slots.default ? slots.default() : [];
      for (const vnode of drawn) {
        if (vnode && typeof vnode === "object") vnode.memo = [];
      }
      return drawn;
    });
    return () => h("div", { style: "display: contents" }, children.value);
  },
};
