// A box the layout does not see (display: contents) whose children are rendered by this component's own render
// (components/isolated.py): a change inside it re-renders only it, not the page around it.
export default {
  template: `<div style="display: contents"><slot></slot></div>`,
};
